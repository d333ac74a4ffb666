"""circle.Trainer: trains like d2l.Trainer, quickly and quietly, and leaves a loss curve."""
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from d2l import torch as d2l  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

import circle  # noqa: E402
import mnist_tools  # noqa: E402
from circle.progress import LossBoard  # noqa: E402


class CircleModel(d2l.Module):
    """The reference solution's shape; the student writes this class in the notebook."""

    def __init__(self, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                 nn.Linear(32, 1))

    def loss(self, y_hat, y):
        return nn.functional.mse_loss(y_hat, y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def accuracy(model):
    test = circle.gen_data(5000, seed=123)
    return 1 - len(circle.net_test(model, test)) / len(test)


def test_trainer_trains_the_circle_model_quietly_and_draws_the_final_curve(capfd):
    torch.manual_seed(0)
    model = CircleModel()
    data = circle.CircleData(circle.gen_data(2000, seed=0), circle.inside_circle)
    trainer = circle.Trainer(max_epochs=100)
    trainer.fit(model, data)
    assert accuracy(model) >= 0.95
    printed = capfd.readouterr()
    assert printed.err == ""
    assert "100/100" in printed.out and printed.out.count("\n") <= 3   # one bar, no flood
    assert isinstance(trainer.figure, Figure)
    (ax,) = trainer.figure.axes
    assert [line.get_label() for line in ax.lines] == ["train_loss"]
    assert len(ax.lines[0].get_xdata()) == 200     # 2 points per epoch, as d2l plots them


def test_trainer_plots_validation_loss_when_the_data_has_a_validation_set(capfd):
    torch.manual_seed(0)
    data = circle.CircleData(circle.gen_data(500, seed=0), circle.inside_circle,
                             val_fraction=0.2)
    trainer = circle.Trainer(max_epochs=5)
    trainer.fit(CircleModel(), data)
    assert list(trainer.board.data) == ["train_loss", "val_loss"]
    assert [x for x, _ in trainer.board.data["val_loss"]] == [1, 2, 3, 4, 5]
    fig, ax = plt.subplots()
    assert trainer.plot_loss(ax) is fig and len(ax.lines) == 2
    assert capfd.readouterr().err == ""


def test_trainer_is_a_d2l_trainer_and_is_shared_with_mnist_tools():
    assert issubclass(circle.Trainer, d2l.Trainer)
    assert mnist_tools.Trainer is circle.Trainer


def test_trainer_rejects_models_that_are_not_d2l_modules(capfd):
    data = circle.CircleData(circle.gen_data(10, seed=0), circle.inside_circle)
    with pytest.raises(TypeError, match="d2l.Module"):
        circle.Trainer(max_epochs=1).fit(nn.Linear(2, 1), data)
    assert capfd.readouterr() == ("", "")     # refused before any progress is shown


def test_trainer_rejects_bad_epoch_counts():
    with pytest.raises(ValueError, match="max_epochs"):
        circle.Trainer(max_epochs=0)


def test_plot_loss_before_fit_says_what_to_do():
    with pytest.raises(RuntimeError, match="fit"):
        circle.Trainer(max_epochs=1).plot_loss()


class FakeHandle:
    def __init__(self):
        self.updates = []

    def update(self, obj):
        self.updates.append(obj)


def test_live_view_redraws_at_most_once_per_refresh_and_ends_with_the_curve_and_final_loss(monkeypatch):
    shown, handles = [], []

    def display(obj, display_id=False):
        shown.append(obj)
        handles.append(FakeHandle())
        return handles[-1]

    monkeypatch.setattr("IPython.display.display", display)
    torch.manual_seed(0)
    data = circle.CircleData(circle.gen_data(400, seed=0), circle.inside_circle, batch_size=20)
    trainer = circle.Trainer(max_epochs=30, live=True, refresh_seconds=3600)
    trainer.fit(CircleModel(), data)
    assert len(shown) == 2                      # the picture, and from its first drawing a text line
    picture, status = handles
    assert len(picture.updates) == 1            # no redraw within the hour, then the final one
    assert picture.updates[-1].format == "png" and picture.updates[-1].data[:4] == b"\x89PNG"
    assert status.updates == []                 # first drawn at the end: the final loss, as text
    assert re.fullmatch(r"30 epochs in [\d.]+ s: train_loss \d+\.\d{4}", shown[1].data), shown[1].data
    assert isinstance(trainer.figure, Figure)


def test_loss_board_averages_every_n_points_as_d2l_does():
    board = LossBoard()
    for i in range(4):
        board.draw(i, float(i), "train_loss", every_n=2)
    board.draw(9, 9.0, "val_loss", every_n=0)   # d2l asks for every 0 with one batch: keep all
    assert board.data["train_loss"] == [(0.5, 0.5), (2.5, 2.5)]
    assert board.data["val_loss"] == [(9.0, 9.0)]
    assert board.latest() == "train_loss 2.5000, val_loss 9.0000"
