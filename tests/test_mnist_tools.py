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


# --- robust_radius: the largest radius the verifier proves ---------------------------------

def linear_classifier(seed):
    """784 -> 2 logits, no ReLU: CROWN is exact, so the robust radius is known in closed form."""
    torch.manual_seed(seed)
    layer = nn.Linear(784, 2)
    return nn.Sequential(layer), layer


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_robust_radius_brackets_the_exact_radius_of_a_linear_classifier(x, seed):
    model, layer = linear_classifier(seed)
    with torch.no_grad():
        logits = model(x)[0]
        label = int(logits.argmax())
        w = (layer.weight[label] - layer.weight[1 - label]).double()
        margin = float(logits[label] - logits[1 - label])
        exact = margin / float(w[:392].abs().sum())      # the top half moves; margin hits 0
    search = mnist_tools.robust_radius(model, x, label, budget=20, start=exact / 50,
                                       precision=1.05)
    assert 0 < search.proved <= exact * (1 + 1e-6) and search.refuted is not None
    assert search.refuted >= exact * (1 - 1e-6)
    assert search.refuted / search.proved <= 1.05 ** 2, str(search)
    # the counterexample is a real one, in the box of the radius it refutes
    x_lb, x_ub = mnist_tools.perturb_all_pixels(x, search.refuted)
    cex = search.counterexample.reshape(1, -1)
    assert bool(((cex >= x_lb) & (cex <= x_ub)).all())
    with torch.no_grad():
        assert int(model(cex).argmax()) != label


def test_robust_radius_answers_agree_with_each_other_on_a_relu_network(x):
    """Every radius proved lies below every radius refuted, and the steps say how."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10),
                          nn.Softmax(dim=1))
    with torch.no_grad():
        label = int(model(x).argmax())
    search = mnist_tools.robust_radius(model, x, label, budget=4)
    proved = [s.delta for s in search.steps if s.status == "pass"]
    refuted = [s.delta for s in search.steps if s.status == "fail"]
    assert proved and search.proved == max(proved)
    assert not refuted or max(proved) < min(refuted) == search.refuted
    assert all(s.method and s.seconds >= 0 for s in search.steps)
    assert search.seconds < 4 + 10                     # the budget, and a loaded machine
    text = str(search)
    assert "largest radius proved" in text and len(text.splitlines()) == len(search.steps) + 2
    figure = mnist_tools.show_radius_search(search)
    assert len(figure.axes[0].collections) >= 2         # the band proved and its points


def test_robust_radius_on_a_misclassified_image_proves_nothing(x):
    model, _ = linear_classifier(0)
    with torch.no_grad():
        wrong = 1 - int(model(x).argmax())
    search = mnist_tools.robust_radius(model, x, wrong, budget=3)
    assert search.proved == 0 and search.refuted is not None
    assert "no radius proved" in search.summary()


@pytest.mark.parametrize("kwargs, word", [
    ({"label": 1.0}, "label"), ({"label": True}, "label"), ({"budget": 0}, "budget"),
    ({"start": float("nan")}, "start"), ({"precision": 1}, "precision"),
])
def test_robust_radius_rejects_bad_arguments(x, kwargs, word):
    model, _ = linear_classifier(0)
    args = {"label": 0, **kwargs}
    label = args.pop("label")
    with pytest.raises(ValueError, match=word):
        mnist_tools.robust_radius(model, x, label, **args)


def test_show_radius_search_with_no_step_says_so():
    empty = mnist_tools.RadiusSearch(proved=0.0, refuted=None, counterexample=None)
    figure = mnist_tools.show_radius_search(empty)
    assert "no call" in figure.axes[0].get_title()
