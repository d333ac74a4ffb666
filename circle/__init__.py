"""The circle task of Lab 3: is a point (x1, x2) inside the circle of centre (0.5, 0.5) and
radius 0.5?

Ground truth (``inside_circle``), data (``gen_data``, ``gen_test``, ``CircleData``), testing by
sampling (``net_test``, ``check_ground_truth``), pictures (``draw_circle``, ``draw_data``,
``draw_spec``, ``plot_decision``, ``plot_verification_map``) and a fast ``Trainer``.
"""
from circle.console import info
from circle.data import CircleData, gen_data, gen_test
from circle.geometry import inside_circle
from circle.plots import draw_circle, draw_data, draw_spec, plot_decision
from circle.sampling import check_ground_truth, net_test
from circle.training import Trainer
from circle.verification_map import plot_verification_map, verify_tiles

__all__ = [
    "CircleData", "Trainer", "check_ground_truth", "draw_circle", "draw_data", "draw_spec",
    "gen_data", "gen_test", "info", "inside_circle", "net_test", "plot_decision",
    "plot_verification_map", "verify_tiles",
]
