"""Turn the user's network into a plain chain: Linear / ReLU layers, maybe a Softmax.

We trace ``net.forward`` with ``torch.fx`` (so custom ``forward`` methods, d2l
``Module``s with a ``net`` attribute and nested ``nn.Sequential`` all work), then
read the traced graph node by node:

* ``nn.Linear`` and ``relu`` become layers of the chain;
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
"""
from __future__ import annotations

import operator
import weakref

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from verifier.bounds import Bounder

SUPPORTED = "nn.Linear, nn.ReLU, nn.Flatten and a final nn.Softmax"

_RELU = {F.relu, torch.relu, "relu"}
_FLATTEN = {torch.flatten, "flatten"}
_SOFTMAX = {F.softmax, torch.softmax, "softmax"}


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


class Network:
    """The chain we bound: ``layers`` is a list of ``nn.Linear`` or ``"relu"``."""

    def __init__(self, net: nn.Module, layers: list, softmax: bool):
        self.net = net
        self.layers = layers
        self.softmax = softmax
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        self.n_in = linears[0].in_features
        self.n_out = linears[-1].out_features
        self.device = linears[0].weight.device
        self.dtype = linears[0].weight.dtype
        self._bounder = None

    def bounder(self):
        """The ``verifier.bounds.Bounder`` of this chain, built on first use and kept
        (a run that finds a counterexample by sampling never needs one)."""
        if self._bounder is None:
            self._bounder = Bounder(self)
        return self._bounder

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The chain before the softmax, run with the user's own layers."""
        for layer in self.layers:
            x = torch.relu(x) if layer == "relu" else layer(x)
        return x

    def double_copy(self) -> nn.Sequential:
        """A float64 copy of the chain (same values: float32 -> float64 is exact)."""
        mods = []
        for layer in self.layers:
            if layer == "relu":
                mods.append(nn.ReLU())
                continue
            lin = nn.Linear(layer.in_features, layer.out_features,
                            bias=layer.bias is not None,
                            device=self.device, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(layer.weight.detach())
                if layer.bias is not None:
                    lin.bias.copy_(layer.bias.detach())
            lin.requires_grad_(False)
            mods.append(lin)
        return nn.Sequential(*mods).eval()


def fingerprint(net: nn.Module) -> tuple:
    """Cheap identity of the network's structure and weights.

    Module ids catch a replaced layer; ``data_ptr`` and the version counter
    ``_version`` catch new or in-place-updated weights (optimizer steps and
    ``load_state_dict`` both bump ``_version``).
    """
    mods = tuple(id(m) for m in net.modules())
    params = tuple((p.data_ptr(), p._version, p.dtype, str(p.device))
                   for p in net.parameters())
    return mods, params


def _unsupported(what: str) -> TypeError:
    return TypeError(f"verify() does not support {what}; it supports networks "
                     f"built from {SUPPORTED}")


def _arg(node: fx.Node, i: int, name: str, default):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _step(node: fx.Node, root: nn.Module):
    """One traced node -> ("linear", module) | ("relu",) | ("flatten",) | ("softmax",)."""
    if node.op == "call_module":
        m = root.get_submodule(node.target)
        kind = type(m).__name__
        if isinstance(m, nn.Linear):
            return ("linear", m)
        if isinstance(m, nn.ReLU):
            return ("relu",)
        if isinstance(m, nn.Identity):
            return ("identity",)
        if isinstance(m, nn.Flatten):
            if (m.start_dim, m.end_dim) != (1, -1):
                raise _unsupported(f"layer '{node.target}' (Flatten with start_dim="
                                   f"{m.start_dim}, end_dim={m.end_dim}); use "
                                   "nn.Flatten() with its defaults")
            return ("flatten",)
        if isinstance(m, nn.Softmax):
            if m.dim not in (1, -1, None):
                raise _unsupported(f"layer '{node.target}' (Softmax over dim={m.dim}); "
                                   "use nn.Softmax(dim=1)")
            return ("softmax",)
        raise _unsupported(f"layer '{node.target}' ({kind})")
    if node.op in ("call_function", "call_method"):
        fn = node.target
        name = fn if isinstance(fn, str) else getattr(fn, "__name__", str(fn))
        if fn in _RELU:
            return ("relu",)
        if fn in _FLATTEN:
            start = _arg(node, 1, "start_dim", 0 if fn is torch.flatten else 0)
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


def parse(net: nn.Module) -> Network:
    """Trace ``net`` and check that it is a chain of supported layers."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module; got {type(net).__name__}")
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
        elif step[0] == "relu":
            layers.append("relu")
        elif step[0] == "softmax":
            softmax = True
    if not any(isinstance(m, nn.Linear) for m in layers):
        raise _unsupported("a network without any nn.Linear layer")
    devices = {p.device for m in layers if m != "relu" for p in m.parameters()}
    dtypes = {p.dtype for m in layers if m != "relu" for p in m.parameters()}
    if len(devices) > 1 or len(dtypes) > 1:
        raise TypeError(f"all layers must be on one device with one dtype; found "
                        f"devices {sorted(map(str, devices))}, dtypes {sorted(map(str, dtypes))}")
    return Network(net, layers, softmax)


_cache: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def cached(net: nn.Module) -> Network:
    """The ``Network`` of ``net``, rebuilt only when ``fingerprint`` changes.

    Keeping it (and the bounder it builds) lets repeated ``verify`` calls skip
    tracing and rebuilding the bounded module.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module; got {type(net).__name__}")
    fp = fingerprint(net)
    hit = _cache.get(net)
    if hit is not None and hit[0] == fp:
        return hit[1]
    network = parse(net)
    _cache[net] = (fp, network)
    return network
