"""The property to prove, as a list of simple constraints on the network's output.

``y_specs`` says lb_i <= y_i <= ub_i for every output i; each finite side is one
``Constraint``. A robustness question ("label stays the argmax") is one more
kind. Every constraint knows four things:

* ``rows``: the rows of auto-LiRPA's C matrix whose *lower* bounds it needs (C
  acts on the logits, i.e. the network before any final softmax);
* ``certified(L, ...)``: a sound lower bound of its slack (how far inside the
  spec the output stays) minus a float rounding margin, per box. A positive
  value proves the constraint on that box;
* ``objective(z)``: a differentiable slack at concrete logits, for the attack;
* ``violated(y)``: does the real network's output ``y`` break it (checked in
  float64 *and* in the network's own dtype, so a student sees the same)?

Slack of ``y_i >= t`` is ``y_i - t``; of ``y_i <= t`` it is ``t - y_i``; for the
argmax it is ``min_j z_label - z_j``.

General output properties (``verifier.outputs``) become ``Linear`` constraints
(``c . y + const >= 0``) and ``Clause``s (an "or" of them) with the same methods,
so the search treats every kind alike.
"""
from __future__ import annotations

import math

import torch

from verifier import rounding

_CUSHION = 1e-10  # float64 rounding inside CROWN and our softmax formulas


def _combine(rig, est: float, cushion, exact_dtype: bool):
    """``(used, rig)`` margins (B,) from the rigorous bound and the estimate."""
    rig = torch.where(torch.isfinite(rig), rig, torch.full_like(rig, math.inf))
    used = rig if exact_dtype else torch.where(torch.isfinite(rig),
                                               torch.clamp(rig, max=est), rig)
    return used + cushion, rig + cushion


class _Checks:
    """Certification from ``slack_bound`` and ``margins``, shared by every kind."""

    def certified(self, L, err, mag, u, obs_out, obs_logit, exact_dtype=False):
        """Certified slacks ``(cert, rcert)`` (B,): with the margin used, and with the
        rigorous margin. A positive ``cert`` proves the constraint on that box (for
        exact arithmetic); a positive ``rcert`` also for the float network."""
        slack = self.slack_bound(L)
        used, rig = self.margins(err, mag, u, obs_out, obs_logit, exact_dtype)
        return slack - used, slack - rig


class Constraint(_Checks):
    def __init__(self, kind: str, i: int, t: float, m: int, softmax: bool):
        self.kind, self.i, self.t, self.m, self.softmax = kind, i, t, m, softmax
        others = [j for j in range(m) if j != i]
        eye = torch.eye(m, dtype=torch.float64)
        if kind == "lower" and not softmax:
            self.rows = eye[[i]]                     # z_i
        elif kind == "upper" and not softmax:
            self.rows = -eye[[i]]                    # -z_i
        elif kind == "lower" or kind == "argmax":
            self.rows = eye[[i]] - eye[others]       # z_i - z_j
        else:  # softmax upper
            self.rows = eye[others] - eye[[i]]       # z_j - z_i

    # -- words -------------------------------------------------------------
    def __str__(self):
        if self.kind == "argmax":
            return f"label {self.i} is the argmax"
        op = ">=" if self.kind == "lower" else "<="
        return f"y[{self.i}] {op} {self.t:.6g}"

    def bound_text(self, slack: float) -> str:
        """The bound behind a slack, in the student's terms."""
        if self.kind == "argmax":
            return f"min_j (z[{self.i}] - z[j]) has lower bound {slack:.4g} (needs > 0)"
        if self.kind == "lower":
            return f"lower bound {self.t + slack:.4g}"
        return f"upper bound {self.t - slack:.4g}"

    # -- bounds ------------------------------------------------------------
    def slack_bound(self, L: torch.Tensor) -> torch.Tensor:
        """Lower bounds of this constraint's rows (B, r) -> slack lower bound (B,)."""
        if self.kind == "argmax":
            return L.amin(-1)
        if not self.softmax:
            return L[:, 0] - self.t if self.kind == "lower" else L[:, 0] + self.t
        ones = torch.zeros_like(L[:, :1])
        if self.kind == "lower":   # p_i >= 1 / (1 + sum_j exp(-(z_i - z_j)))
            p_lo = torch.exp(-torch.logsumexp(torch.cat([ones, -L], 1), dim=1))
            return p_lo - self.t
        p_hi = torch.exp(-torch.logsumexp(torch.cat([ones, L], 1), dim=1))
        return self.t - p_hi

    def margins(self, err, mag, u, obs_out, obs_logit, exact_dtype: bool):
        """Slack a proof needs so that the float network agrees, per box: ``(used, rig)``.

        ``rig`` (B,) is the rigorous worst-case rounding bound of
        ``verifier.rounding``; infinite where the float network may overflow.
        ``used`` is ``rig`` when that is affordable, else the ``estimate``; never
        below ``rig`` when ``rig`` is infinite, and always ``rig`` for float64
        networks (``exact_dtype``), where it is tiny.
        """
        est = self.estimate(obs_out, obs_logit)
        if self.kind == "argmax":
            rig = 2 * err.amax(1)
            if self.softmax:  # p_label > p_j in float needs a bit more
                rig = rig + 4 * rounding.softmax_margin(err, mag, u)
            cushion = _CUSHION * (1 + mag.amax(1))
        elif not self.softmax:
            rig = err[:, self.i]
            cushion = _CUSHION * (1 + abs(self.t) + mag[:, self.i])
        else:
            rig = rounding.softmax_margin(err, mag, u)
            cushion = _CUSHION
        return _combine(rig, est, cushion, exact_dtype)

    def estimate(self, obs_out, obs_logit) -> float:
        """The estimated rounding margin: 4x (8x for logit differences) the largest
        float error seen at the sampled points (``Property.observe``), at least
        1e-6 (1 + |t|)."""
        floor = 1e-6 * (1 + abs(self.t))
        if self.kind == "argmax":
            return max(floor, 8 * float(obs_logit.max()))
        return max(floor, 4 * float(obs_out[self.i]))

    # -- concrete points -----------------------------------------------------
    def objective(self, z: torch.Tensor) -> torch.Tensor:
        """Slack at concrete logits z (B, m); negative suggests a violation. A NaN
        anywhere (the float network overflowed) counts as a violation: -inf."""
        if self.kind == "argmax":
            diff = z[:, [self.i]] - z
            diff[:, self.i] = math.inf
            out = diff.amin(1)
        elif not self.softmax:
            out = z[:, self.i] - self.t if self.kind == "lower" else self.t - z[:, self.i]
        elif self.t <= 0:  # p <= t <= 0: no log of t; p > 0 breaks it (almost) everywhere
            out = self.t - torch.softmax(z, dim=1)[:, self.i]
        else:
            logp = torch.log_softmax(z, dim=1)[:, self.i]
            out = logp - math.log(self.t) if self.kind == "lower" else math.log(self.t) - logp
        nan = torch.isnan(z).any(1) | torch.isnan(out)
        return torch.where(nan, torch.full_like(out, -math.inf), out)

    def describe(self, y: torch.Tensor) -> str:
        """What the real output ``y`` (1, m) does wrong, in words."""
        if self.kind == "argmax":
            return f"is classified as {int(y.argmax(1))}, not {self.i}"
        return f"gives y[{self.i}] = {y.flatten()[self.i].item():.6g}, breaking {self}"

    def violated(self, y: torch.Tensor) -> bool:
        """Is the real output ``y`` (1, m) a violation, compared as a student would?
        A NaN output satisfies no bound: ``nan >= t`` and ``nan <= t`` are both false."""
        if self.kind == "argmax":
            return bool(torch.isnan(y).any()) or int(y.argmax(dim=1).item()) != self.i
        v = y[0, self.i]
        if torch.isnan(v):
            return True
        t_own = torch.tensor(self.t, dtype=y.dtype).item()
        v64 = v.double().item()
        if self.kind == "lower":
            return v64 < self.t and v64 < t_own
        return v64 > self.t and v64 > t_own


def from_y_specs(lb: torch.Tensor, ub: torch.Tensor, softmax: bool) -> list:
    """One constraint per finite, non-trivial side of ``y_specs``.

    A probability is never below 0 nor above 1, in exact arithmetic and in float
    (``softmax`` divides each exp by a sum that includes it), so for a network
    ending in softmax ``p >= t`` with ``t <= 0`` and ``p <= t`` with ``t >= 1``
    hold everywhere and need no proof.
    """
    m = lb.shape[0]
    out = []
    for i in range(m):
        lo, hi = float(lb[i]), float(ub[i])
        if softmax and m == 1:  # the one probability is exactly 1
            lo, hi = (lo, hi) if lo > 1.0 or hi < 1.0 else (-math.inf, math.inf)
        if math.isfinite(lo) and not (softmax and lo <= 0.0):
            out.append(Constraint("lower", i, lo, m, softmax))
        if math.isfinite(hi) and not (softmax and hi >= 1.0):
            out.append(Constraint("upper", i, hi, m, softmax))
    return out


def robustness(label: int, m: int, softmax: bool) -> list:
    return [Constraint("argmax", label, 0.0, m, softmax)]


class Linear(_Checks):
    """``c . y + const >= 0`` (``> 0`` when ``strict``) on the network's outputs.

    On a network ending in softmax only ``y_i - y_j`` (a comparison of two
    outputs) is accepted: it has the sign of ``z_i - z_j`` on the logits.
    """

    kind = "linear"

    def __init__(self, atom, m: int, softmax: bool):
        bad = [i for i in atom.expr.coef if i >= m]
        if bad:
            raise ValueError(f"the property uses y[{bad[0]}], but the network has {m} "
                             f"outputs (y[0] .. y[{m - 1}])")
        self.c = torch.zeros(m, dtype=torch.float64)
        for i, v in atom.expr.coef.items():
            self.c[i] = v
        self.const, self.strict, self.softmax, self.text = \
            atom.expr.const, atom.strict, softmax, str(atom)
        coefs = sorted(atom.expr.coef.values())
        if softmax and not (coefs == [-1.0, 1.0] and self.const == 0.0):
            raise ValueError(f"on a network that ends in softmax, output properties may "
                             f"only compare two outputs (y[i] <= y[j]), which means the "
                             f"same for probabilities and logits; got {self.text}. State "
                             "other properties on the network without its Softmax")
        self.rows = self.c.unsqueeze(0)

    def __str__(self):
        return self.text

    def bound_text(self, slack: float) -> str:
        return f"its slack has lower bound {slack:.4g} (needs > 0)"

    def slack_bound(self, L: torch.Tensor) -> torch.Tensor:
        return L[:, 0] + (0.0 if self.softmax else self.const)

    def estimate(self, obs_out, obs_logit) -> float:
        floor = 1e-6 * (1 + abs(self.const))
        if self.softmax:
            return max(floor, 8 * float(obs_logit.max()))
        return max(floor, 4 * float(obs_out @ self.c.abs()))

    def margins(self, err, mag, u, obs_out, obs_logit, exact_dtype: bool):
        est = self.estimate(obs_out, obs_logit)
        absc = self.c.to(err.device).abs()
        if self.softmax:
            rig = 2 * err.amax(1) + 4 * rounding.softmax_margin(err, mag, u)
            cushion = _CUSHION * (1 + mag.amax(1))
        else:
            rig = err @ absc
            cushion = _CUSHION * (1 + abs(self.const) + mag @ absc)
        return _combine(rig, est, cushion, exact_dtype)

    def objective(self, z: torch.Tensor) -> torch.Tensor:
        out = z @ self.c.to(z.device) + (0.0 if self.softmax else self.const)
        nan = torch.isnan(z).any(1) | torch.isnan(out)
        return torch.where(nan, torch.full_like(out, -math.inf), out)

    def value(self, y: torch.Tensor) -> float:
        return float(y.double().flatten() @ self.c.to(y.device)) + \
            (0.0 if self.softmax else self.const)

    def describe(self, y: torch.Tensor) -> str:
        return f"breaks {self.text}"

    def violated(self, y: torch.Tensor) -> bool:
        v = self.value(y)
        return v != v or (v <= 0 if self.strict else v < 0)


class Clause(_Checks):
    """An "or" of constraints: proved on a box when one of them is, broken at a point
    where all of them are."""

    kind = "clause"

    def __init__(self, parts: list):
        self.parts = parts
        self.rows = torch.cat([p.rows for p in parts], 0)

    def __str__(self):
        return " or ".join(str(p) for p in self.parts)

    def bound_text(self, slack: float) -> str:
        return f"the best of its parts has slack lower bound {slack:.4g} (needs > 0)"

    def certified(self, L, err, mag, u, obs_out, obs_logit, exact_dtype=False):
        certs, rcerts, s = [], [], 0
        for p in self.parts:
            r = p.rows.shape[0]
            a, b = p.certified(L[:, s:s + r], err, mag, u, obs_out, obs_logit, exact_dtype)
            certs.append(a)
            rcerts.append(b)
            s += r
        return torch.stack(certs, 1).amax(1), torch.stack(rcerts, 1).amax(1)

    def estimate(self, obs_out, obs_logit) -> float:
        return max(p.estimate(obs_out, obs_logit) for p in self.parts)

    def objective(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack([p.objective(z) for p in self.parts], 1).amax(1)

    def describe(self, y: torch.Tensor) -> str:
        return f"breaks every part of {self}"

    def violated(self, y: torch.Tensor) -> bool:
        return all(p.violated(y) for p in self.parts)


def from_formula(formula, m: int, softmax: bool) -> list:
    """A ``verifier.outputs`` formula -> constraints (one per clause of its CNF)."""
    from verifier import outputs

    out = []
    for clause in outputs.cnf(formula):
        parts = [Linear(a, m, softmax) for a in clause]
        out.append(parts[0] if len(parts) == 1 else Clause(parts))
    return out


class Property:
    """A conjunction of constraints, with their C rows stacked."""

    def __init__(self, constraints: list, network):
        self.constraints = constraints
        self.network = network
        self.u = rounding.unit_roundoff(network.dtype, network.device)
        self.exact_dtype = network.dtype == torch.float64
        self.obs_out = torch.zeros(network.n_out, dtype=torch.float64)
        self.obs_logit = torch.zeros(network.n_out, dtype=torch.float64)

    def observe(self, errors) -> None:
        """Take the float errors seen at sampled points: ``(out, logit)`` from
        ``verifier.network.check_runs_as_traced``."""
        self.obs_out, self.obs_logit = errors

    def rows(self, active: list) -> torch.Tensor:
        return torch.cat([self.constraints[k].rows for k in active], 0)

    def certify(self, L: torch.Tensor, err, mag, active: list):
        """Row lower bounds (B, sum r_k) -> certified slacks ``(cert, rcert)``, each
        (B, len(active)); see ``Constraint.certified``."""
        cert, rcert, s = [], [], 0
        for k in active:
            c = self.constraints[k]
            r = c.rows.shape[0]
            a, b = c.certified(L[:, s:s + r], err, mag, self.u, self.obs_out,
                               self.obs_logit, self.exact_dtype)
            cert.append(a)
            rcert.append(b)
            s += r
        return torch.stack(cert, 1), torch.stack(rcert, 1)

    def estimate(self, active: list) -> float:
        """The largest estimated rounding margin among ``active`` constraints (the
        margin a proof used where the rigorous one was too loose)."""
        return max(self.constraints[k].estimate(self.obs_out, self.obs_logit)
                   for k in active)

    def slacks(self, z: torch.Tensor, active: list | None = None) -> torch.Tensor:
        """Concrete slack of each constraint at logits z: (B, len(active))."""
        ks = range(len(self.constraints)) if active is None else active
        return torch.stack([self.constraints[k].objective(z) for k in ks], 1)

    def objective(self, z: torch.Tensor, active: list | None = None) -> torch.Tensor:
        """min over constraints of the concrete slack, (B,)."""
        return self.slacks(z, active).amin(1)

    def violations(self, y: torch.Tensor) -> list:
        return [c for c in self.constraints if c.violated(y)]
