"""Turn the user's network into a plain chain: affine / ReLU layers, maybe a Softmax.

We trace ``net.forward`` with ``torch.fx`` (so custom ``forward`` methods, d2l
``Module``s with a ``net`` attribute and nested ``nn.Sequential`` all work), then
read the traced graph node by node:

* an ``nn.Linear`` becomes an ``Affine`` layer of the chain, holding a frozen copy
  of its weights; ``relu`` becomes ``"relu"`` and ``sigmoid`` ``"sigmoid"``
  (``ACTIVATIONS``);
* ``flatten(x, 1, -1)`` is accepted and dropped: we always feed the chain flat
  inputs of shape ``(N, n)``, on which it does nothing;
* a ``softmax`` over the class dimension is accepted only as the very last step,
  and remembered in ``Network.softmax`` (we bound the logits and handle softmax
  ourselves, see ``verifier.softmax``);
* anything else (another layer, an arithmetic op, a branch) is an error that
  names it.

Layers that ``forward`` creates on the fly, like the handout's
``y = nn.Flatten()(X)`` or ``nn.Softmax(dim=1)(y)``, are traced through into the
functions they call, so they are checked the same way.

What is bounded must be what runs. So a layer is accepted only when it is
*exactly* one of the supported classes, with the class's own ``forward``, and no
module of the network carries forward hooks or parametrizations (pruning,
weight norm): a subclass of ``nn.ReLU`` with its own ``forward`` is a different
function, and a hook can change any output. On top of these rules,
``check_runs_as_traced`` runs the user's network on the points ``verify`` samples
anyway and refuses it if the outputs differ from the chain's by more than
float rounding can explain.

``cached`` re-traces the network on every call (about 1 ms) and reuses the
previous ``Network``, with the bounded module it built, only when the traced
chain is the same modules and every weight still equals, value for value, the
frozen copy that was bounded: in-place edits through ``.data``, ``copy_`` or
``*=``, a ``forward`` that now takes another path, all give a new ``Network``.
"""
from __future__ import annotations

import operator
import weakref

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from verifier import rounding
from verifier.bounds import Bounder

SUPPORTED = "nn.Linear, nn.ReLU, nn.Sigmoid, nn.Flatten and a final nn.Softmax"
DTYPES = (torch.float32, torch.float64)

_RELU = {F.relu, torch.relu, "relu"}
_SIGMOID = {torch.sigmoid, F.sigmoid, "sigmoid"}
_FLATTEN = {torch.flatten, "flatten"}
_SOFTMAX = {F.softmax, torch.softmax, "softmax"}

#: The layer classes we read, each with the ``forward`` it must still have.
_LEAVES = {cls: cls.forward for cls in (nn.Linear, nn.ReLU, nn.Sigmoid, nn.Identity,
                                        nn.Flatten, nn.Softmax)}
_MODULE_CALL = nn.Module.__call__

#: The activations a chain may hold, by the name a layer of the chain has.
ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid}


class _Tracer(fx.Tracer):
    """Keeps registered leaf modules as single nodes; traces through the rest."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return next(m.children(), None) is None

    def call_module(self, m, forward, args, kwargs):
        try:
            self.path_of_module(m)
        except NameError:  # created inside forward(): trace what it calls
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)


class Affine:
    """``x @ weight.T + bias``, with a frozen copy of an ``nn.Linear``'s parameters."""

    def __init__(self, linear: nn.Linear):
        self.source = linear
        self.weight = linear.weight.detach().clone()
        self.bias = None if linear.bias is None else linear.bias.detach().clone()
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def unchanged(self) -> bool:
        """Does the live ``nn.Linear`` still hold exactly the weights we copied?"""
        w, b = self.source.weight, self.source.bias
        if (b is None) != (self.bias is None) or w.dtype != self.weight.dtype \
                or w.device != self.weight.device or w.shape != self.weight.shape:
            return False
        return torch.equal(w, self.weight) and (b is None or torch.equal(b, self.bias))


class Network:
    """The chain we bound: ``layers`` is a list of ``Affine`` or an activation's name
    (``"relu"``, ``"sigmoid"``)."""

    def __init__(self, layers: list, softmax: bool):
        self.layers = layers
        self.softmax = softmax
        affine = [m for m in layers if isinstance(m, Affine)]
        self.n_in = affine[0].in_features
        self.n_out = affine[-1].out_features
        self.device = affine[0].weight.device
        self.dtype = affine[0].weight.dtype
        self._bounder = None

    @property
    def relu_only(self) -> bool:
        """Is every activation a ReLU? (The ReLU-split search needs it, and so does
        alpha-CROWN with given intermediate bounds.)"""
        return all(m == "relu" for m in self.layers if isinstance(m, str))

    def same_as(self, other: "Network") -> bool:
        """Is ``other`` (a fresh trace) this chain, with the weights we copied?"""
        if self.softmax != other.softmax or len(self.layers) != len(other.layers):
            return False
        for mine, theirs in zip(self.layers, other.layers):
            if isinstance(mine, str) or isinstance(theirs, str):
                if mine != theirs:
                    return False
                continue
            if mine.source is not theirs.source or not mine.unchanged():
                return False
        return True

    def bounder(self):
        """The ``verifier.bounds.Bounder`` of this chain, built on first use and kept
        (a run that finds a counterexample by sampling never needs one)."""
        if self._bounder is None:
            self._bounder = Bounder(self)
        return self._bounder

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The chain before the softmax, in the network's dtype."""
        for layer in self.layers:
            x = ACTIVATIONS[layer](x) if isinstance(layer, str) else layer(x)
        return x

    def exact_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The chain before the softmax in float64: the exact function of the weights
        up to float64 rounding (float32 weights and inputs are exact in float64)."""
        x = x.double()
        for layer in self.layers:
            if isinstance(layer, str):
                x = ACTIVATIONS[layer](x)
            else:
                b = None if layer.bias is None else layer.bias.double()
                x = F.linear(x, layer.weight.double(), b)
        return x

    def double_copy(self) -> nn.Sequential:
        """A float64 ``nn.Sequential`` of the chain (same values: float32 -> float64 is exact)."""
        mods = []
        for layer in self.layers:
            if isinstance(layer, str):
                mods.append(nn.ReLU() if layer == "relu" else nn.Sigmoid())
                continue
            lin = nn.Linear(layer.in_features, layer.out_features,
                            bias=layer.bias is not None,
                            device=self.device, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(layer.weight)
                if layer.bias is not None:
                    lin.bias.copy_(layer.bias)
            lin.requires_grad_(False)
            mods.append(lin)
        return nn.Sequential(*mods).eval()


def _unsupported(what: str) -> TypeError:
    return TypeError(f"verify() does not support {what}; it supports networks "
                     f"built from {SUPPORTED}")


def _arg(node: fx.Node, i: int, name: str, default):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _check_modules(net: nn.Module) -> None:
    """Every module runs as its class says: no hooks, parametrizations or own call."""
    glob = torch.nn.modules.module
    if getattr(glob, "_global_forward_hooks", None) \
            or getattr(glob, "_global_forward_pre_hooks", None):
        raise _unsupported("global forward hooks (torch.nn.modules.module."
                           "register_module_forward_hook); remove them before verifying")
    for name, m in net.named_modules():
        where = f"module '{name}' ({type(m).__name__})" if name else \
            f"the network ({type(m).__name__})"
        if m._forward_hooks or m._forward_pre_hooks:
            raise _unsupported(f"forward hooks on {where}: a hook can change what the "
                               "layer computes; remove them (handle.remove()) first")
        if parametrize.is_parametrized(m):
            raise _unsupported(f"parametrizations on {where} (torch.nn.utils."
                               "parametrize); remove them first")
        if type(m).__call__ is not _MODULE_CALL:
            raise _unsupported(f"{where}, whose class overrides __call__")
        if "forward" in vars(m):
            # net(x) runs the instance's own forward, while tracing reads the class's: bounding
            # the class's would prove a network that does not run
            raise _unsupported(f"{where} with a forward assigned to the object itself "
                               "(m.forward = f): net(x) runs f, not the class's forward(); "
                               "define the computation in the class, or verify the module "
                               "whose forward f is")


def _leaf(node: fx.Node, root: nn.Module):
    m = root.get_submodule(node.target)
    cls = type(m)
    if cls not in _LEAVES:
        base = next((c.__name__ for c in _LEAVES if isinstance(m, c)), None)
        note = f", a subclass of nn.{base} that may compute something else" if base else ""
        raise _unsupported(f"layer '{node.target}' ({cls.__name__}{note})")
    if cls.forward is not _LEAVES[cls] or "forward" in vars(m):
        raise _unsupported(f"layer '{node.target}' ({cls.__name__}) with a replaced "
                           "forward()")
    return m


def _step(node: fx.Node, root: nn.Module):
    """One traced node -> ("linear", module) | ("relu",) | ("sigmoid",) | ("flatten",) |
    ("softmax",)."""
    if node.op == "call_module":
        m = _leaf(node, root)
        if isinstance(m, nn.Linear):
            return ("linear", m)
        if isinstance(m, nn.ReLU):
            return ("relu",)
        if isinstance(m, nn.Sigmoid):
            return ("sigmoid",)
        if isinstance(m, nn.Identity):
            return ("identity",)
        if isinstance(m, nn.Flatten):
            if (m.start_dim, m.end_dim) != (1, -1):
                raise _unsupported(f"layer '{node.target}' (Flatten with start_dim="
                                   f"{m.start_dim}, end_dim={m.end_dim}); use "
                                   "nn.Flatten() with its defaults")
            return ("flatten",)
        if m.dim not in (1, -1, None):
            raise _unsupported(f"layer '{node.target}' (Softmax over dim={m.dim}); "
                               "use nn.Softmax(dim=1)")
        return ("softmax",)
    if node.op in ("call_function", "call_method"):
        fn = node.target
        name = fn if isinstance(fn, str) else getattr(fn, "__name__", str(fn))
        if fn in _RELU:
            return ("relu",)
        if fn in _SIGMOID:
            return ("sigmoid",)
        if fn in _FLATTEN:
            start = _arg(node, 1, "start_dim", 0)
            end = _arg(node, 2, "end_dim", -1)
            if (start, end) != (1, -1):
                raise _unsupported(f"flatten(start_dim={start}, end_dim={end}) in "
                                   "forward(); flatten from dim 1, e.g. nn.Flatten()")
            return ("flatten",)
        if fn in _SOFTMAX:
            dim = _arg(node, 1, "dim", None)
            if dim not in (1, -1, None):
                raise _unsupported(f"softmax over dim={dim} in forward(); use "
                                   "nn.Softmax(dim=1)")
            return ("softmax",)
        if fn in (operator.getitem, getattr):
            raise _unsupported(f"indexing or attribute access ('{name}') on a "
                               "tensor in forward()")
        raise _unsupported(f"the operation '{name}' in forward()")
    raise _unsupported(f"a '{node.op}' node ({node.target}) in forward()")


def _check_weights(layers: list) -> None:
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    devices = {m.weight.device for m in linears}
    dtypes = {m.weight.dtype for m in linears} | {m.bias.dtype for m in linears if m.bias is not None}
    if len(devices) > 1 or len(dtypes) > 1:
        raise TypeError(f"all layers must be on one device with one dtype; found "
                        f"devices {sorted(map(str, devices))}, dtypes {sorted(map(str, dtypes))}")
    dtype = dtypes.pop()
    if dtype not in DTYPES:
        raise TypeError(f"verify() bounds float32 and float64 networks; this one is "
                        f"{str(dtype).replace('torch.', '')}, whose rounding it cannot "
                        "bound. Convert it first with net.float() (or net.double())")
    for k, m in enumerate(linears):
        for what, t in (("weights", m.weight), ("biases", m.bias)):
            if t is not None and not torch.isfinite(t).all():
                bad = "NaN" if torch.isnan(t).any() else "infinite"
                raise ValueError(f"Linear layer {k} of the network has {bad} {what} (did "
                                 "training diverge? try a smaller learning rate); a network "
                                 "with non-finite weights cannot be verified")


def parse(net: nn.Module) -> Network:
    """Trace ``net`` and check that it is a chain of supported layers."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module; got {type(net).__name__}")
    _check_modules(net)
    try:
        graph = _Tracer().trace(net)
    except TypeError:
        raise
    except Exception as e:  # data-dependent control flow, odd signatures, ...
        raise TypeError(
            f"could not trace {type(net).__name__}.forward() ({type(e).__name__}: {e}); "
            f"verify() supports networks whose forward() just applies {SUPPORTED}, "
            "such as an nn.Sequential") from None
    nodes = list(graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise _unsupported(f"a forward() with {len(inputs)} inputs (expected exactly one)")
    layers, softmax, prev = [], False, inputs[0]
    for node in nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            if node.args[0] is not prev:
                raise _unsupported("a forward() that does not return the result of "
                                   "its last layer")
            break
        if softmax:
            raise _unsupported("layers after the Softmax; Softmax must be the last layer")
        step = _step(node, net)
        if not node.args or node.args[0] is not prev or any(
                isinstance(a, fx.Node) for a in list(node.args[1:]) + list(node.kwargs.values())):
            raise _unsupported(f"a forward() that is not a simple chain of layers "
                               f"(at '{node.target}')")
        prev = node
        if step[0] == "linear":
            layers.append(step[1])
        elif step[0] in ACTIVATIONS:
            layers.append(step[0])
        elif step[0] == "softmax":
            softmax = True
    if not any(isinstance(m, nn.Linear) for m in layers):
        raise _unsupported("a network without any nn.Linear layer")
    _check_weights(layers)
    return Network([m if isinstance(m, str) else Affine(m) for m in layers], softmax)


_cache: "weakref.WeakKeyDictionary[nn.Module, Network]" = weakref.WeakKeyDictionary()


def cached(net: nn.Module) -> Network:
    """The ``Network`` of ``net``: traced anew, but reused (with the bounded module
    it built) while the chain and every weight value are the same."""
    fresh = parse(net)
    hit = _cache.get(net)
    if hit is not None and hit.same_as(fresh):
        return hit
    _cache[net] = fresh
    return fresh


def run_points(net: nn.Module, network: Network, x: torch.Tensor, input_shape) -> torch.Tensor:
    """The user's network on points ``x`` (K, n), each shaped ``input_shape``: (K, m).

    Checks the contract a counterexample relies on: ``net`` takes a tensor of
    ``input_shape`` and returns one of shape ``(1, m)``.
    """
    k = x.shape[0]
    xs = x.to(network.device, network.dtype)
    with torch.no_grad():
        try:
            y1 = net(xs[:1].reshape(input_shape))
        except Exception as e:
            raise ValueError(f"net(x) failed for x of shape {tuple(input_shape)} "
                             f"({type(e).__name__}: {e}); give input_shape as the shape "
                             "your network takes for one input") from None
        if not isinstance(y1, torch.Tensor) or tuple(y1.shape) != (1, network.n_out):
            got = tuple(y1.shape) if isinstance(y1, torch.Tensor) else type(y1).__name__
            raise ValueError(f"net(x) for x of shape {tuple(input_shape)} gives {got}; "
                             f"verify() needs an output of shape (1, {network.n_out}): "
                             "one row of outputs (add nn.Flatten() first, or give "
                             "input_shape as (1, n))")
        if k == 1:
            return y1
        y = net(xs.reshape(k, *input_shape[1:]))
    return y.reshape(k, network.n_out)


def check_runs_as_traced(net: nn.Module, network: Network, x: torch.Tensor, input_shape):
    """Run ``net`` on points ``x`` (K, n) and compare with the chain we bound.

    Returns ``(out_err, logit_err)`` (each (n_out,) float64): the largest
    |real network - exact function| seen, for the outputs (probabilities if it
    ends in softmax) and for the chain's own float logits. Raises ``TypeError`` when
    the real outputs differ from the exact chain by more than the rigorous
    rounding bound allows anywhere: then ``net`` does not compute the layers we
    traced (a patched class, a hook we could not see, state in ``forward``).
    """
    y = run_points(net, network, x, input_shape).double()
    with torch.no_grad():
        z = network.logits(x.to(network.device, network.dtype)).double()
        z64 = network.exact_logits(x.to(network.device, network.dtype))
    y64 = torch.softmax(z64, dim=1) if network.softmax else z64
    diff = (y - y64).abs()
    # One rigorous bound for all the points (their hull): a single cheap pass.
    xd = x.to(network.device, torch.float64)
    err, mag = rounding.forward_error(network, xd.amin(0, keepdim=True),
                                      xd.amax(0, keepdim=True))
    if network.softmax:
        u = rounding.unit_roundoff(network.dtype, network.device)
        allowed = rounding.softmax_margin(err, mag, u).unsqueeze(1)
    else:
        allowed = err
    # Where the float chain itself overflows, the real network may too: not a mismatch.
    overflow = ~torch.isfinite(z).all(1, keepdim=True) & ~torch.isfinite(y)
    bad = ~(diff <= 2 * allowed + 1e-12) & ~overflow
    if bad.any():
        k, i = bad.nonzero()[0].tolist()
        raise TypeError(
            f"net(x) does not compute what its layers compute: at x = "
            f"{x[k, :4].tolist()}{'...' if x.shape[1] > 4 else ''}, output {i} is "
            f"{y[k, i].item():.6g} but the traced chain of {SUPPORTED} gives "
            f"{y64[k, i].item():.6g}. verify() supports only these layers, exactly, "
            "without patched classes, hooks or a forward() that changes what it does")
    seen = torch.where(overflow, torch.zeros_like(diff), diff)
    return seen.amax(0).cpu(), torch.nan_to_num((z - z64).abs(), nan=0.0).amax(0).cpu()
