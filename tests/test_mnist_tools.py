"""mnist_tools: perturbation boxes and the pictures of images, boxes and counterexamples."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import mnist_tools  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(1, 784)


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Softmax(dim=1))


def test_perturb_one_pixel_moves_only_that_pixel(x):
    original = x.clone()
    x_lb, x_ub = mnist_tools.perturb_one_pixel(x, 5, 0.5)
    assert x_lb.shape == x_ub.shape == (1, 784)
    assert torch.equal(x, original)                          # x itself unchanged
    changed = (x_lb != x).nonzero()[:, 1].tolist()
    assert changed == [5] == (x_ub != x).nonzero()[:, 1].tolist()
    assert x_lb[0, 5] == pytest.approx(x[0, 5] - 0.5) and x_ub[0, 5] == pytest.approx(x[0, 5] + 0.5)


@pytest.mark.parametrize("pixel_pos", [-1, 784, 2.0, True, "5"])
def test_perturb_one_pixel_rejects_bad_positions(x, pixel_pos):
    with pytest.raises(ValueError, match="pixel_pos"):
        mnist_tools.perturb_one_pixel(x, pixel_pos, 0.5)


@pytest.mark.parametrize("delta", [0, -0.1, float("nan"), float("inf"), "0.5"])
def test_perturbations_reject_bad_deltas(x, delta):
    with pytest.raises(ValueError, match="delta"):
        mnist_tools.perturb_one_pixel(x, 5, delta)
    with pytest.raises(ValueError, match="delta"):
        mnist_tools.perturb_all_pixels(x, delta)


@pytest.mark.parametrize("bad", [torch.zeros(784), torch.zeros(1, 28, 28), [0.0] * 784])
def test_perturbations_want_one_flattened_image(bad):
    with pytest.raises(ValueError, match=r"\(1, 784\)"):
        mnist_tools.perturb_one_pixel(bad, 5, 0.5)
    with pytest.raises(ValueError, match=r"\(1, 784\)"):
        mnist_tools.perturb_all_pixels(bad, 0.5)


def test_perturb_all_pixels_moves_the_first_half_as_the_handout_does(x):
    x_lb, x_ub = mnist_tools.perturb_all_pixels(x, 1.0)
    assert torch.allclose(x_ub[0, :392] - x[0, :392], torch.ones(392))
    assert torch.allclose(x[0, :392] - x_lb[0, :392], torch.ones(392))
    assert torch.equal(x_lb[0, 392:], x[0, 392:]) and torch.equal(x_ub[0, 392:], x[0, 392:])


def test_perturbations_do_not_carry_gradients(x):
    x.requires_grad_(True)
    x_lb, x_ub = mnist_tools.perturb_all_pixels(x, 0.1)
    assert not x_lb.requires_grad and not x_ub.requires_grad


@pytest.mark.parametrize("shape", [(1, 784), (1, 1, 28, 28), (28, 28)])
def test_plot_mnist_shows_any_784_pixel_tensor(shape):
    fig, ax = plt.subplots()
    assert mnist_tools.plot_mnist(torch.rand(shape), ax=ax) is fig
    assert ax.images[0].get_array().shape == (28, 28)


def test_plot_mnist_rejects_other_sizes():
    with pytest.raises(ValueError, match="784"):
        mnist_tools.plot_mnist(torch.rand(1, 783))


def test_show_perturbation_shows_lower_upper_and_difference(x):
    x_lb, x_ub = mnist_tools.perturb_one_pixel(x, 30, 0.5)
    fig = mnist_tools.show_perturbation(x_lb, x_ub)
    lower, upper, difference = fig.axes[:3]
    assert [a.get_title() for a in (lower, upper, difference)] == ["lower bound", "upper bound",
                                                                   "difference"]
    diff = difference.images[0].get_array()
    assert diff[1, 2] == pytest.approx(1.0) and float(abs(diff).sum()) == pytest.approx(1.0)
    assert lower.images[0].get_clim() == upper.images[0].get_clim()    # one grey scale


def test_show_perturbation_draws_on_given_axes(x):
    fig, axes = plt.subplots(1, 3)
    assert mnist_tools.show_perturbation(x, x, axes=axes) is fig
    with pytest.raises(ValueError, match="3 axes"):
        mnist_tools.show_perturbation(x, x, axes=axes[:2])


def test_show_counterexample_titles_carry_the_predicted_labels(x):
    model = net()
    cex = x.clone()
    cex[0, 0] += 3.0
    fig = mnist_tools.show_counterexample(model, x, cex)
    titles = [a.get_title() for a in fig.axes[:3]]
    with torch.no_grad():
        expected = [int(model(x).argmax(1)), int(model(cex).argmax(1))]
    assert titles == [f"original: {expected[0]}", f"counterexample: {expected[1]}", "difference"]


@pytest.mark.filterwarnings("error")
def test_pictures_raise_no_warning(x):
    """numpy 2 warns (DeprecationWarning) when matplotlib is handed a tensor to convert."""
    model = net()
    fig, ax = plt.subplots()
    mnist_tools.plot_mnist(x, ax=ax)
    x_lb, x_ub = mnist_tools.perturb_one_pixel(x, 30, 0.5)
    mnist_tools.show_perturbation(x_lb, x_ub)
    mnist_tools.show_counterexample(model, x, x_ub)
