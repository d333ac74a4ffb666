"""How long training takes with stock ``d2l.Trainer``, the kit's ``Trainer`` and a plain loop.

Run: ``.venv/bin/python -m bench training`` (or ``-m bench.bench_training --mnist-epochs N``)

Workloads (the models are the reference solution's shape, defined here, not in the kit):

- circle: 2-32-32-1 ReLU network, 2,000 points, batch 100, Adam(lr=0.01), MSE, 100 epochs,
  no validation set;
- MNIST: 784-128-64-10 ReLU network + Softmax, NLLLoss on log-probabilities, SGD(lr=0.01,
  momentum=0.9), batch 64, validation on the 10,000 test images after every epoch as in the
  handout; 1 epoch by default (``--mnist-epochs``) to keep the whole run to a few minutes.

All three runs use the same data loaders, model and optimizer from the same seed; the plain
loop does the same work (train, then one pass over the validation loader, per epoch). Stock
d2l runs headless (Agg): its ProgressBoard still draws with matplotlib and "displays" every
drawing, which outside a notebook prints a line to stdout; that output is swallowed and
counted. The kit's Trainer prints its progress bar to a swallowed stdout too.
"""
import argparse
import contextlib
import io
import statistics
import time
from typing import Callable, List, Tuple

import matplotlib.pyplot as plt

# Settle pyplot's backend now. Stock d2l's board calls d2l.use_svg_display(), which creates an
# IPython shell; matplotlib 3.7 then switching backends under that shell needs
# IPython.core.pylabtools.backend2gui, removed in IPython 9.16, and fails.
plt.switch_backend("Agg")

import torch  # noqa: E402
from d2l import torch as d2l  # noqa: E402
from torch import nn  # noqa: E402

import circle  # noqa: E402
import mnist_tools  # noqa: E402


class CircleModel(d2l.Module):
    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                 nn.Linear(32, 1))

    def loss(self, y_hat, y):
        return nn.functional.mse_loss(y_hat, y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class MNISTModel(d2l.Module):
    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(),
                                 nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10),
                                 nn.Softmax(dim=1))

    def loss(self, y_hat, y):
        return nn.functional.nll_loss(torch.log(y_hat + 1e-12), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def plain_fit(model: d2l.Module, data: d2l.DataModule, epochs: int) -> None:
    """The loop a student would write by hand: same loaders, loss and optimizer."""
    optim = model.configure_optimizers()
    train, val = data.get_dataloader(True), data.get_dataloader(False)
    for _ in range(epochs):
        model.train()
        for X, y in train:
            loss = model.loss(model(X), y)
            optim.zero_grad()
            loss.backward()
            optim.step()
        if val is not None:
            model.eval()
            with torch.no_grad():
                for X, y in val:
                    model.loss(model(X), y)


def warm_up(make_model: Callable[[], d2l.Module], data: d2l.DataModule, batches: int = 50
            ) -> None:
    """A few untimed steps, so that one-time costs (threads, allocator) hit no timed run."""
    model = make_model()
    optim = model.configure_optimizers()
    for _, (X, y) in zip(range(batches), data.get_dataloader(True)):
        optim.zero_grad()
        model.loss(model(X), y).backward()
        optim.step()


def timed(make_model: Callable[[], d2l.Module], train: Callable[[d2l.Module], None]
          ) -> Tuple[float, float, d2l.Module, int]:
    """Wall and CPU seconds to train a fresh model (seed 0), the model, and lines printed."""
    torch.manual_seed(0)
    model = make_model()
    sink = io.StringIO()
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(sink):
        train(model)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    plt.close("all")
    return wall, cpu, model, sink.getvalue().count("\n")


def circle_accuracy(model: d2l.Module) -> float:
    points = circle.gen_data(10_000, seed=1)
    return 1 - len(circle.net_test(model, points)) / len(points)


def mnist_accuracy(model: d2l.Module, data: mnist_tools.MNISTData) -> float:
    correct = 0
    with torch.no_grad():
        for X, y in data.test_loader:
            correct += int((model(X).argmax(1) == y).sum())
    return correct / len(data.test_set)


def run_workload(name: str, make_model, data, epochs: int, accuracy, repeats: int) -> List[str]:
    """Time the three trainers, interleaved (stock d2l only in the first round); medians."""
    runs = {
        "stock d2l.Trainer": lambda m: d2l.Trainer(max_epochs=epochs).fit(m, data),
        "circle.Trainer": lambda m: circle.Trainer(max_epochs=epochs, live=False).fit(m, data),
        "plain loop": lambda m: plain_fit(m, data, epochs),
    }
    warm_up(make_model, data)
    walls, cpus, rows = {k: [] for k in runs}, {k: [] for k in runs}, {}
    for round_ in range(repeats):
        for label, train in runs.items():
            if round_ and label.startswith("stock"):
                continue
            wall, cpu, model, printed = timed(make_model, train)
            walls[label].append(wall)
            cpus[label].append(cpu)
            rows[label] = (model, printed)
    plain_wall = statistics.median(walls["plain loop"])
    plain_cpu = statistics.median(cpus["plain loop"])
    lines = []
    for label, (model, printed) in rows.items():
        wall, cpu = statistics.median(walls[label]), statistics.median(cpus[label])
        lines.append(f"{name:<20} {label:<18} {wall:7.2f} {wall / plain_wall:6.2f}x "
                     f"{cpu:7.2f} {cpu / plain_cpu:6.2f}x {accuracy(model):9.4f} {printed:7d}")
    return lines


def main(mnist_epochs: int = 1, repeats: int = 2) -> None:
    """Print the table: seconds per trainer, ratio to the plain loop, accuracy, lines printed.

    ``repeats``: runs of the kit's Trainer and the plain loop, interleaved (median kept);
    stock d2l runs once (it is the slow one).
    """
    circle_data = circle.CircleData(circle.gen_data(2000, seed=0), circle.inside_circle)
    mnist_data = mnist_tools.MNISTData(batch_size_train=64, batch_size_test=1000)
    print(f"{'workload':<20} {'trainer':<18} {'wall s':>7} {'ratio':>7} {'cpu s':>7} "
          f"{'ratio':>7} {'accuracy':>9} {'stdout':>7}")
    for line in run_workload("circle, 100 epochs", CircleModel, circle_data, 100,
                             circle_accuracy, repeats):
        print(line, flush=True)
    for line in run_workload(f"MNIST, {mnist_epochs} epoch(s)", MNISTModel, mnist_data,
                             mnist_epochs, lambda m: mnist_accuracy(m, mnist_data), repeats):
        print(line, flush=True)
    print("ratio: to the plain loop (median of the runs). cpu s: process CPU time, less "
          "disturbed by other load on the machine than wall time.\nstdout: lines the run "
          "printed (swallowed). accuracy: on 10,000 held-out points (circle) or the MNIST "
          "test set.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    main(args.mnist_epochs, args.repeats)
