"""Turn checked artifacts (:mod:`autograde.artifacts`) into the objects the test cells use.

* arrays become tensors or numpy arrays again, lists stay lists, tuples tuples;
* a verdict becomes a ``verifier`` result with that status (the hidden tests re-run ``verify``);
* a chain becomes a :class:`RebuiltNetwork` (``nn.Linear``, ``nn.ReLU``, a final ``nn.Softmax``),
  after a challenge: the chain must give, on the grader's inputs, what the student's network
  gave in the run. A network with a ``loss`` method gets the negative log-likelihood back (mean
  or sum, as its answers showed; safe at log(0) only if its answer was finite there), or a
  loss that fails with what went wrong;
* what cannot be graded becomes an object that fails on use and says why.

Every object made here is built by the kit from numbers; no student code is involved.
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
        if layer == "relu":
            modules.append(nn.ReLU())
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
    first = next(layer for layer in network.layers if layer != "relu")
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


def rebuild(value: artifacts.Value, seed: int) -> tuple[Any, list[str]]:
    """The object a test cell gets for `value`, and notes on what the rebuild found."""
    if isinstance(value, artifacts.Array):
        if value.kind == "tensor":
            import torch

            return torch.as_tensor(value.values.copy()), []
        return value.values.copy(), []
    if isinstance(value, list):
        parts = [rebuild(item, seed) for item in value]
        return [obj for obj, _ in parts], [note for _, notes in parts for note in notes]
    if isinstance(value, tuple):
        parts = [rebuild(item, seed) for item in value]
        return tuple(obj for obj, _ in parts), [note for _, notes in parts for note in notes]
    if isinstance(value, dict):
        parts = {key: rebuild(item, seed) for key, item in value.items()}
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
            last = [layer for layer in value.layers if layer != "relu"][-1]
            object.__setattr__(net, "loss", _loss(value.loss, seed, last[0].shape[0]))
        return net, []
    if isinstance(value, artifacts.Unreadable):
        if "does not support" in value.reason or "could not trace" in value.reason:
            return _torch_classes()[1](value.reason), [value.reason]
        return NotGradable(value.reason), [value.reason]
    return value, []
