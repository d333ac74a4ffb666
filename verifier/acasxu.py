"""The ACAS Xu benchmark's properties, in physical units (Katz et al., CAV 2017).

ACAS Xu networks advise an aircraft how to avoid an intruder: from five inputs
(rho: distance in ft, theta and psi: angles in rad, v_own and v_int: speeds in
ft/s) they score five advisories, COC (clear of conflict), weak left, weak right,
strong left, strong right, and the *minimal* score wins. ``PROPERTIES[k]`` holds
property phi_k: its input boxes (one, or two for phi6) and the output property
that must hold there, built with ``verifier.Y``; ``instance(k, model)`` puts them
in the network's normalised units (see ``verifier.formats.NNet``).

phi1-phi4 apply to all 45 networks; phi5-phi10 each to one (``NETWORK``).
"""
from __future__ import annotations

import math

from verifier import outputs
from verifier.formats import NNet
from verifier.outputs import Formula, Y, all_of, any_of

PI = 3.141593
COC, WEAK_LEFT, WEAK_RIGHT, STRONG_LEFT, STRONG_RIGHT = range(5)


def minimal(i: int) -> outputs.All:
    """Advisory ``i`` has the minimal score (ties allowed)."""
    return all_of(Y[i] <= Y[j] for j in range(5) if j != i)


def not_minimal(i: int) -> outputs.Any:
    """Some other advisory scores strictly lower than ``i``."""
    return any_of(Y[j] < Y[i] for j in range(5) if j != i)


def _phi1(model):
    return Y[COC] < model.output_threshold(1500)


_CLEAR = ([55947.691, -PI, -PI, 1145, 0], [60760, PI, PI, 1200, 60])
PROPERTIES = {
    1: ([_CLEAR], _phi1),
    2: ([_CLEAR], lambda m: any_of(Y[j] > Y[COC] for j in range(1, 5))),
    3: ([([1500, -0.06, 3.10, 980, 960], [1800, 0.06, PI, 1200, 1200])],
        lambda m: not_minimal(COC)),
    4: ([([1500, -0.06, 0, 1000, 700], [1800, 0.06, 0, 1200, 800])],
        lambda m: not_minimal(COC)),
    5: ([([250, 0.2, -PI, 100, 0], [400, 0.4, -PI + 0.005, 400, 400])],
        lambda m: minimal(STRONG_RIGHT)),
    6: ([([12000, 0.7, -PI, 100, 0], [62000, PI, -PI + 0.005, 1200, 1200]),
         ([12000, -PI, -PI, 100, 0], [62000, -0.7, -PI + 0.005, 1200, 1200])],
        lambda m: minimal(COC)),
    7: ([([0, -PI, -PI, 100, 0], [60760, PI, PI, 1200, 1200])],
        lambda m: not_minimal(STRONG_LEFT) & not_minimal(STRONG_RIGHT)),
    8: ([([0, -PI, -0.1, 600, 600], [60760, -0.75 * math.pi, 0.1, 1200, 1200])],
        lambda m: minimal(WEAK_LEFT) | minimal(COC)),
    9: ([([2000, -0.4, -PI, 100, 0], [7000, -0.14, -PI + 0.01, 150, 150])],
        lambda m: minimal(STRONG_LEFT)),
    10: ([([36000, 0.7, -PI, 900, 600], [60760, PI, -PI + 0.01, 1200, 1200])],
         lambda m: minimal(COC)),
}
NETWORK = {5: "1_1", 6: "1_1", 7: "1_9", 8: "2_9", 9: "3_3", 10: "4_5"}


def instance(k: int, model: NNet) -> tuple[list[list[tuple[float, float]]], Formula]:
    """``([x_specs, ...], property)`` of phi_k for a loaded ``NNet``."""
    boxes, make = PROPERTIES[k]
    return [model.input_box(lo, hi) for lo, hi in boxes], make(model)
