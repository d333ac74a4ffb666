"""circle: pictures return their figure, draw on a given axes, and the verification map."""
import sys
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from torch import nn  # noqa: E402

import circle  # noqa: E402
from circle.verification_map import COLOURS, tile_region, verify_tiles  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))


def test_draw_circle_adds_the_true_circle_to_the_given_axes():
    fig, ax = plt.subplots()
    assert circle.draw_circle(ax) is fig
    (patch,) = ax.patches
    assert patch.center == (0.5, 0.5) and patch.radius == 0.5
    assert ax.get_xlim() == (0.0, 1.5) and ax.get_ylim() == (0.0, 1.5)


def test_drawings_without_axes_stack_on_the_current_axes_like_the_handout():
    fig = circle.draw_circle()
    assert circle.draw_data(circle.gen_data(20, seed=0)) is fig
    assert circle.draw_spec([0.7, 0.85], [0.7, 0.85]) is fig
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1


def test_draw_data_colours_points_by_ground_truth_or_given_labels():
    xs = circle.gen_data(200, seed=0)
    fig, ax = plt.subplots()
    circle.draw_data(xs, ax=ax)
    inside, outside = ax.collections
    n_inside = sum(circle.inside_circle(x) for x in xs)
    assert len(inside.get_offsets()) == n_inside and len(outside.get_offsets()) == 200 - n_inside
    fig, ax = plt.subplots()
    circle.draw_data(xs, labels=np.ones((200, 1)), ax=ax)
    assert len(ax.collections[0].get_offsets()) == 200


def test_draw_data_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match="labels"):
        circle.draw_data(circle.gen_data(10, seed=0), labels=[1, 0])


def test_draw_spec_draws_the_box_outline_with_a_label():
    fig, ax = plt.subplots()
    circle.draw_spec([0.7, 0.85], [0.86, 0.9], ax=ax, label="property 1")
    (line,) = ax.lines
    assert line.get_xdata().tolist() == [0.7, 0.85, 0.85, 0.7, 0.7]
    assert line.get_ydata().tolist() == [0.86, 0.86, 0.9, 0.9, 0.86]
    assert ax.get_legend_handles_labels()[1] == ["property 1"]


def test_plot_decision_shows_the_net_output_over_the_domain():
    fig, ax = plt.subplots()
    assert circle.plot_decision(small_net(), ax=ax, resolution=50) is fig
    (image,) = ax.images
    assert image.get_array().shape == (50, 50)
    assert tuple(image.get_extent()) == (0.0, 1.5, 0.0, 1.5)
    assert len(fig.axes) == 2   # the plot and its colour bar


def test_plot_decision_rejects_bad_resolution():
    with pytest.raises(ValueError, match="resolution"):
        circle.plot_decision(small_net(), resolution=1)


@pytest.mark.parametrize("box, region", [
    (((0.4, 0.6), (0.4, 0.6)), "inside"),
    (((1.2, 1.5), (1.2, 1.5)), "outside"),
    (((0.0, 0.1), (0.0, 0.1)), "outside"),       # the corner near (0, 0) is outside the disc
    (((0.9, 1.1), (0.4, 0.6)), "mixed"),
    (((0.0, 1.5), (0.0, 1.5)), "mixed"),
])
def test_tile_region_tells_inside_outside_and_mixed(box, region):
    assert tile_region(box) == region


@pytest.fixture
def fake_verifier(monkeypatch):
    """Stand in for verifier.verify: pass inside specs, fail outside ones right of x1 = 1."""
    calls = []

    def verify(net, x_specs, y_specs, counterexamples=None, *, timeout, progress):
        calls.append((x_specs, y_specs, timeout, progress))
        if y_specs[0][0] == 0.5:
            status = "pass"
        else:
            status = "fail" if x_specs[0][0] >= 1.0 else "unknown"
        return types.SimpleNamespace(status=status)

    monkeypatch.setitem(sys.modules, "verifier", types.SimpleNamespace(verify=verify))
    return calls


def test_verify_tiles_checks_whole_tiles_with_the_right_spec(fake_verifier):
    tiles = verify_tiles(small_net(), tiles=6, timeout_per_tile=0.5)
    assert len(tiles) == 36
    checked = [t for t in tiles if t.region != "mixed"]
    assert len(fake_verifier) == len(checked) > 0
    for tile, (x_specs, y_specs, timeout, progress) in zip(checked, fake_verifier):
        assert x_specs == list(tile.box) and timeout == 0.5 and progress is False
        assert y_specs == ([[0.5, np.inf]] if tile.region == "inside" else [[-np.inf, 0.5]])
    assert all(t.status == "mixed" for t in tiles if t.region == "mixed")
    assert {t.status for t in checked} == {"pass", "fail", "unknown"}


def test_plot_verification_map_colours_each_tile_by_status(fake_verifier):
    fig, ax = plt.subplots()
    assert circle.plot_verification_map(small_net(), tiles=4, ax=ax) is fig
    tiles = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(tiles) == 16
    colours = {matplotlib.colors.to_hex(p.get_facecolor()) for p in tiles}
    assert colours <= {matplotlib.colors.to_hex(c) for c in COLOURS.values()}
    assert isinstance(fig, Figure)


def test_verify_tiles_rejects_bad_tile_counts(fake_verifier):
    with pytest.raises(ValueError, match="tiles"):
        verify_tiles(small_net(), tiles=0)
