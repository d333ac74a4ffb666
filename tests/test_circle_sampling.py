"""circle: testing a network by sampling (net_test, check_ground_truth, info)."""
import numpy as np
import pytest
import torch
from torch import nn

import circle
import circle.console


class PerfectNet(nn.Module):
    """Outputs 1.0 inside the circle and 0.0 outside: never wrong."""

    def forward(self, x):
        return (((x - 0.5) ** 2).sum(dim=1, keepdim=True) <= 0.25).float()


class ConstantNet(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([value]))

    def forward(self, x):
        return self.bias.expand(len(x), 1)


def test_net_test_finds_no_counterexample_for_a_perfect_net():
    assert circle.net_test(PerfectNet(), circle.gen_data(1000, seed=0)) == []


def test_net_test_returns_exactly_the_misclassified_points():
    xs = circle.gen_data(1000, seed=0)
    cexs = circle.net_test(ConstantNet(0.9), xs)     # says "inside" everywhere
    outside = [x for x in xs if circle.inside_circle(x) == 0]
    assert len(cexs) == len(outside) > 0
    assert all(isinstance(c, np.ndarray) and c.shape == (2,) for c in cexs)
    assert np.array_equal(np.array(cexs), np.array(outside))


def test_net_test_uses_the_handout_threshold_output_at_least_half_means_inside():
    inside_box = circle.gen_test(50, (0.4, 0.6), (0.4, 0.6), seed=0)
    assert circle.net_test(ConstantNet(0.5), inside_box) == []
    assert len(circle.net_test(ConstantNet(0.49), inside_box)) == 50


def test_net_test_rejects_networks_with_several_outputs():
    with pytest.raises(ValueError, match="one output"):
        circle.net_test(nn.Linear(2, 3), circle.gen_data(5, seed=0))


def test_check_ground_truth_prints_and_returns_output_and_label(capsys):
    output, truth = circle.check_ground_truth(ConstantNet(0.25), [0.5, 0.5])
    assert output == pytest.approx(0.25) and truth == 1
    printed = capsys.readouterr()
    assert "net->0.2500; ground truth->1" in printed.out and printed.err == ""


def test_check_ground_truth_takes_a_counterexample_as_verify_returns_it(capsys):
    cex = torch.tensor([[0.95, 0.95]])  # verify's counterexamples have the net's input shape (1, 2)
    output, truth = circle.check_ground_truth(ConstantNet(0.75), cex)
    assert output == pytest.approx(0.75) and truth == 0
    assert capsys.readouterr().err == ""


def test_check_ground_truth_rejects_bad_points():
    with pytest.raises(ValueError, match="one point"):
        circle.check_ground_truth(ConstantNet(0.25), [0.5, 0.5, 0.5])


def test_info_prints_magenta_bold_to_stdout_in_a_notebook(capsys, monkeypatch):
    monkeypatch.setattr(circle.console, "in_notebook", lambda: True)
    circle.info("Pass! no violation found.")
    printed = capsys.readouterr()
    assert "Pass! no violation found." in printed.out and printed.err == ""
    assert "\x1b[1m" in printed.out and "\x1b[35m" in printed.out    # bold, magenta


def test_info_rejects_non_strings():
    with pytest.raises(TypeError, match="str"):
        circle.info(42)
