"""``Context``: what one ``verify()`` run knows, passed from step to step.

``verifier.engine`` fills it in order (the box, then the property, then the
bounds on the whole box); the searches (``verifier.bab``, ``verifier.relu_bab``)
read it. The fields that are ``None`` at first are set before any search starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from verifier.attack import Box
from verifier.network import Network


@dataclass
class Context:
    t0: float                       # time.monotonic() when the run started
    deadline: float                 # time.monotonic() when the run must end
    net: nn.Module                  # the user's network, run to confirm counterexamples
    network: Network                # its Linear/ReLU/Sigmoid chain (``verifier.network``)
    input_shape: tuple              # the shape a counterexample has, (1, n) by default
    progress: bool | None           # show a progress bar (None: after 2 s)
    lb: torch.Tensor                # (n,) float64: the user's box
    ub: torch.Tensor
    proof_lb: torch.Tensor          # (n,) float64: the box a proof covers (``rounding.float_enclosure``)
    proof_ub: torch.Tensor
    box: Box                        # the box in the network's dtype, where attacks search
    gen: torch.Generator            # every random number of the run
    prop: object = None             # ``verifier.property.Property``, once the constraints are known
    active: list = field(default_factory=list)   # constraints CROWN left open on the whole box
    bounder: object = None          # ``verifier.bounds.Bounder`` of ``network``
    lower: torch.Tensor | None = None   # the output bounds reported in the result
    upper: torch.Tensor | None = None
    bound_seconds: float = 0.0      # CROWN on the whole box, once: what first rounds are sized by

    @property
    def free(self) -> int:
        """How many inputs the proof box leaves free (nonzero width)."""
        return int(((self.proof_ub - self.proof_lb) > 0).sum())
