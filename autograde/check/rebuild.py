"""Turn checked artifacts (:mod:`autograde.artifacts`) into the objects the test cells use.

* arrays become tensors or numpy arrays again, lists stay lists, tuples tuples;
* a verdict becomes a ``verifier`` result with that status (the hidden tests re-run ``verify``);
* a chain becomes a :class:`RebuiltNetwork` (``nn.Linear``, ``nn.ReLU``, a final ``nn.Softmax``),
  after a challenge: the chain must give, on the grader's inputs, what the student's network
  gave in the run. A network with a ``loss`` method gets the negative log-likelihood back (mean
  or sum, as its answers showed; safe at log(0) only if its answer was finite there), or a
  loss that fails with what went wrong;
* an object left in the student's kernel (a function, an object of the student's class) becomes
  a stand-in whose calls go to that kernel (:mod:`autograde.check.channel`);
* a network the chain cannot carry becomes a module with the structure the run reported (torch's
  own layers rebuilt, the student's own classes as empty modules of the same name), whose
  ``forward`` and other attributes are calls; ``verify`` refuses it with the verifier's reason;
* what cannot be graded becomes an object that fails on use and says why.

Every object made here is built by the kit from numbers; student code runs only in the student's
kernel, through calls.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from autograde import artifacts
from autograde.run import challenge

ATOL = RTOL = 1e-4  # the rebuilt chain against the network that ran (float32 round-off)
LOSS_RTOL = 1e-3


class NotGradable:
    """Stands for a value that could not cross the boundary; any use raises with the reason."""

    def __init__(self, reason: str):
        object.__setattr__(self, "_reason", reason)

    def __getattr__(self, name: str) -> Any:
        raise TypeError(object.__getattribute__(self, "_reason"))

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(object.__getattribute__(self, "_reason"))

    __call__ = __getitem__ = __len__ = __iter__ = __contains__ = __float__ = __int__ = __index__ = _refuse

    def __repr__(self) -> str:
        return f"<not gradable: {object.__getattribute__(self, '_reason')}>"


def _torch_classes():
    import torch
    from torch import nn

    class RebuiltNetwork(nn.Sequential):
        """The student's network as the chain the verifier reads; inputs are flattened
        to one row each first (images in; a no-op on rows). The flatten is in
        ``forward``, where ``verify``'s tracer reads it, not in ``__call__``, which
        ``verify`` refuses to bound around; iterating gives only the chain's layers."""

        def forward(self, x):
            return super().forward(torch.flatten(x, 1))

    class UnreadableNetwork(nn.Module):
        """A network the grader could not rebuild; calling it raises with the reason."""

        def __init__(self, reason: str):
            super().__init__()
            self.reason = reason

        def forward(self, x):
            raise TypeError(self.reason)

        def _refuse(self, *args, **kwargs):
            raise TypeError(self.reason)

        # a test that reads the structure (which layers) gets the reason too, never this
        # class's own name as if it were one of the student's layers
        modules = children = named_modules = named_children = parameters = _refuse

    return RebuiltNetwork, UnreadableNetwork


def _chain(network: artifacts.Network):
    import torch
    from torch import nn

    RebuiltNetwork, _ = _torch_classes()
    modules = []
    for layer in network.layers:
        if layer in ("relu", "sigmoid"):
            modules.append(nn.ReLU() if layer == "relu" else nn.Sigmoid())
            continue
        weight, bias = layer
        dtype = torch.float64 if weight.dtype == np.float64 else torch.float32
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(weight))
            if bias is not None:
                linear.bias.copy_(torch.as_tensor(bias))
        modules.append(linear)
    if network.softmax:
        modules.append(nn.Softmax(dim=1))
    return RebuiltNetwork(*modules).eval()


def _challenge_problem(net, network: artifacts.Network, seed: int) -> str | None:
    import torch

    if isinstance(network.outputs, str):
        return f"running your network on the grader's inputs raised {network.outputs}"
    first = next(layer for layer in network.layers if not isinstance(layer, str))
    inputs = torch.as_tensor(challenge.network_inputs(seed, first[0].shape[1]))
    with torch.no_grad():
        expected = net(inputs.to(first[0].dtype == np.float64 and torch.float64 or torch.float32))
    got = torch.as_tensor(network.outputs).reshape(-1)
    expected = expected.double().reshape(-1)
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=ATOL, rtol=RTOL):
        return ("the verifier does not see the network that runs: on the grader's inputs your network's "
                "outputs differ from the chain of layers it reads; keep forward() a plain chain of layers")
    return None


def _nll(probs, labels, safe: bool):
    import torch

    picked = probs[torch.arange(len(labels)), labels]
    return -torch.log(picked.clamp_min(1e-12) if safe else picked)


def _loss(answers: list, seed: int, classes: int) -> Callable:
    """The loss the answers show: NLL (mean or sum), or one that fails saying what it gave."""
    import torch

    pairs = challenge.loss_inputs(seed, classes)
    errors = [answer for answer in answers if isinstance(answer, str)]
    if len(answers) != len(pairs) or errors:
        message = f"your loss raised {errors[0]}" if errors else "your loss did not answer the grader's inputs"
        return _failing_loss(message)
    values = [float(answer.reshape(-1)[0]) if answer.size == 1 else None for answer in answers]
    if any(value is None for value in values):
        return _failing_loss("the loss should be one number")
    ordinary = list(zip(pairs[:-1], values[:-1]))
    reference = [_nll(torch.as_tensor(p).double(), torch.as_tensor(y), safe=True) for (p, y), _ in ordinary]
    for reduce in ("mean", "sum"):
        if all(np.isclose(value, float(getattr(nll, reduce)()), rtol=LOSS_RTOL)
               for nll, (_, value) in zip(reference, ordinary)):
            safe = bool(np.isfinite(values[-1]))
            return lambda probs, y, reduce=reduce, safe=safe: getattr(
                _nll(torch.as_tensor(probs), torch.as_tensor(y), safe), reduce)()
    (_, value), nll = ordinary[0], reference[0]
    return _failing_loss(f"on the grader's inputs your loss gave {value:.4f}, where -log(y_hat[label]) "
                         f"averaged over the batch is {float(nll.mean()):.4f}")


def _failing_loss(message: str) -> Callable:
    def loss(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(message)

    return loss


# torch.nn layers a remote network's structure may name, with the attributes they are built from
_TORCH_LAYERS = {"Linear": ("in_features", "out_features"), "ReLU": (), "Sigmoid": (), "Tanh": (), "GELU": (),
                 "ELU": (), "SiLU": (), "Softplus": (), "Identity": (), "Softmax": ("dim",), "LogSoftmax": ("dim",),
                 "Flatten": ("start_dim", "end_dim"), "LeakyReLU": ("negative_slope",), "Dropout": ("p",),
                 "Sequential": (), "ModuleList": ()}
_INTEGER_ATTRIBUTES = ("in_features", "out_features", "dim", "start_dim", "end_dim")


def _layer(module: artifacts.Module):
    """A module standing for one entry of a remote network's structure."""
    import torch
    from torch import nn

    if module.torch and module.type_name in _TORCH_LAYERS:
        kwargs = {key: int(value) if key in _INTEGER_ATTRIBUTES else float(value)
                  for key, value in module.attributes.items() if key in _TORCH_LAYERS[module.type_name]}
        try:
            if module.type_name == "Linear":
                layer = nn.Linear(kwargs["in_features"], kwargs["out_features"], bias=module.bias is not None)
                with torch.no_grad():
                    if module.weight is not None and module.weight.shape == tuple(layer.weight.shape):
                        layer.weight.copy_(torch.as_tensor(module.weight))
                        if module.bias is not None:
                            layer.bias.copy_(torch.as_tensor(module.bias))
                    else:
                        layer.weight.zero_()
                        if layer.bias is not None:
                            layer.bias.zero_()
                return layer
            return getattr(nn, module.type_name)(**kwargs)
        except (KeyError, TypeError, ValueError, RuntimeError):
            pass  # attributes that do not build it: an empty module of that name, below

    def forward(self, *args, **kwargs):
        raise TypeError(f"the {module.type_name} layer of a network from the student's kernel cannot be run "
                        "on its own in a test")

    return type(module.type_name, (nn.Module,), {"forward": forward, "__module__": "student"})()


def _remote_network(value: artifacts.RemoteNetwork, channel):
    from torch import fx, nn

    remote, reason = value.remote, value.reason

    class RemoteNetwork(nn.Sequential if value.sequential else nn.Module):
        """The student's network, left in their kernel: its modules as the run reported them, and
        every use of its forward or of an attribute the structure does not hold is a call."""

        def forward(self, x):  # one input: the verifier's tracer reads this signature
            if isinstance(x, fx.Proxy):
                raise TypeError(reason)  # the verifier tracing it: say what it cannot read
            if channel is None:
                raise TypeError(f"{reason}; and the student's kernel was not available for calls")
            return channel.call(remote, remote.type_name, (x,), {})

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                # not while it is being built (add_module asks whether a name is taken)
                if name.startswith("_") or channel is None or not self.__dict__.get("_autograde_built"):
                    raise
                return channel.getattr(remote, remote.type_name, name)

    RemoteNetwork.__name__ = RemoteNetwork.__qualname__ = remote.type_name
    modules = [None] * len(value.structure)
    for index, entry in enumerate(value.structure):
        if index == 0:
            modules[0] = RemoteNetwork()
            continue
        modules[index] = _layer(entry)
        parent = modules[entry.parent]
        label = entry.name.rpartition(".")[2] or str(index)
        try:
            parent.add_module(label, modules[index])
        except (KeyError, TypeError, AttributeError):
            parent.add_module(f"module{index}", modules[index])
    network = modules[0].eval()
    network.__dict__["_autograde_built"] = True
    return network


def rebuild(value: artifacts.Value, seed: int, channel=None) -> tuple[Any, list[str]]:
    """The object a test cell gets for `value`, and notes on what the rebuild found; stand-ins for
    objects in the student's kernel call through `channel` (None: no calls can be made)."""
    if isinstance(value, artifacts.Array):
        if value.kind == "tensor":
            import torch

            return torch.as_tensor(value.values.copy()), []
        return value.values.copy(), []
    if isinstance(value, list):
        parts = [rebuild(item, seed, channel) for item in value]
        return [obj for obj, _ in parts], [note for _, notes in parts for note in notes]
    if isinstance(value, tuple):
        parts = [rebuild(item, seed, channel) for item in value]
        return tuple(obj for obj, _ in parts), [note for _, notes in parts for note in notes]
    if isinstance(value, dict):
        parts = {key: rebuild(item, seed, channel) for key, item in value.items()}
        return {key: obj for key, (obj, _) in parts.items()}, [n for _, notes in parts.values() for n in notes]
    if isinstance(value, artifacts.Verdict):
        from verifier.result import STATUSES, VerificationResult

        if value.status not in STATUSES:
            reason = f"a verify result has status {value.status[:40]!r}, expected one of {STATUSES}"
            return NotGradable(reason), [reason]
        return VerificationResult(value.status), []
    if isinstance(value, artifacts.Network):
        net = _chain(value)
        problem = _challenge_problem(net, value, seed)
        if problem:
            return _torch_classes()[1](problem), [problem]
        if value.loss is not None:
            last = [layer for layer in value.layers if not isinstance(layer, str)][-1]
            object.__setattr__(net, "loss", _loss(value.loss, seed, last[0].shape[0]))
        return net, []
    if isinstance(value, artifacts.Remote):
        if channel is None:
            reason = (f"{value.name} stays in the student's kernel, and calls into it were not available "
                      "(the run ended before the check): it cannot be graded")
            return NotGradable(reason), [reason]
        from autograde.check.channel import RemoteObject

        return RemoteObject(value, channel), []
    if isinstance(value, artifacts.RemoteNetwork):
        return _remote_network(value, channel), [] if channel is not None else [value.reason]
    if isinstance(value, artifacts.Unreadable):
        if "does not support" in value.reason or "could not trace" in value.reason:
            return _torch_classes()[1](value.reason), [value.reason]
        return NotGradable(value.reason), [value.reason]
    return value, []
