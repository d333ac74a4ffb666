"""Correct lab3 solutions written differently from the reference: each deserves full marks.

Each variant is the reference (``crafted.perfect``) with some solution cells rewritten, by
grade_id. ``other_ways`` changes many at once (another architecture, a plain PyTorch loop,
``nn_circle = model.net``, a longer ``verify`` timeout, ``log(y_hat + 1e-6)``, ``y_specs`` as a
tensor); ``ten_epochs`` trains MNIST for the notebook's suggested 10 epochs.
"""
from __future__ import annotations

from nbformat import NotebookNode

from autograde import crafted

OTHER_WAYS = {
    "circle_model": '''\
class CircleModel(d2l.Module):
    def __init__(self, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(2, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(),
                                 nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 1))

    def loss(self, y_hat, y):
        return ((y_hat - y) ** 2).mean()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)
''',
    "circle_train": '''\
torch.manual_seed(1)
points = gen_data(3000, seed=1)
X = torch.as_tensor(points, dtype=torch.float32)
Y = torch.tensor([[float(inside_circle(p))] for p in points])
model = CircleModel(lr=0.01)
optimizer = model.configure_optimizers()
for epoch in range(100):
    order = torch.randperm(len(X))
    for start in range(0, len(X), 100):
        batch = order[start:start + 100]
        optimizer.zero_grad()
        loss = model.loss(model.net(X[batch]), Y[batch])
        loss.backward()
        optimizer.step()
nn_circle = model.net
''',
    "verify_p1": '''\
cases1 = []
ret1 = verify(nn_circle, x_specs, y_specs, counterexamples=cases1, timeout=90)
print(ret1)
''',
    "mnist_model": '''\
class MNISTModel(d2l.Module):
    def __init__(self, lr=0.001):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 10))

    def forward(self, X):
        return nn.Softmax(dim=1)(self.net(nn.Flatten()(X)))

    def loss(self, y_hat, y):
        return nn.functional.nll_loss(torch.log(y_hat + 1e-6), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)
''',
}

TEN_EPOCHS = {
    "mnist_train": '''\
torch.manual_seed(0)
mnist_model = MNISTModel()
trainer = mnist_tools.Trainer(max_epochs=10)
trainer.fit(mnist_model, mnist_data)
''',
}


def _rewrite(notebook: NotebookNode, cells: dict[str, str]) -> NotebookNode:
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in cells:
            cell.source = cells[grade_id]
    return notebook


def other_ways(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    notebook = _rewrite(crafted.perfect(source, release), OTHER_WAYS)
    for cell in notebook.cells:  # y_specs as a tensor, however it was designed
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "y_specs":
            cell.source += "\ny_specs = torch.tensor(y_specs)"
    return notebook


def ten_epochs(source: NotebookNode, release: NotebookNode) -> NotebookNode:
    return _rewrite(crafted.perfect(source, release), TEN_EPOCHS)
