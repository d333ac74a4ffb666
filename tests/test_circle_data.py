"""circle: ground truth, data generation and the CircleData module."""
import numpy as np
import pytest
import torch

import circle
from circle.geometry import inside_circle_many


@pytest.mark.parametrize("point, expected", [
    ((0.5, 0.5), 1), ((0.0, 0.5), 1), ((1.0, 0.5), 1),   # centre and rim count as inside
    ((0.85, 0.85), 1), ((0.86, 0.86), 0), ((0.0, 0.0), 0), ((1.5, 1.5), 0),
])
def test_inside_circle_labels_centre_rim_and_outside(point, expected):
    assert circle.inside_circle(point) == expected


@pytest.mark.parametrize("point", [[0.5, 0.5], np.array([0.5, 0.5]), torch.tensor([0.5, 0.5]),
                                   torch.tensor([0.5, 0.5], requires_grad=True),
                                   torch.tensor([[0.5, 0.5]])])  # a batch of one, as verify gives
def test_inside_circle_accepts_lists_arrays_and_tensors(point):
    assert circle.inside_circle(point) == 1


@pytest.mark.parametrize("bad", [(0.5,), (0.1, 0.2, 0.3), [[0.5, 0.5], [0.1, 0.1]], "ab", None,
                                 (float("nan"), 0.5)])
def test_inside_circle_rejects_anything_but_one_point(bad):
    with pytest.raises(ValueError, match="one point"):
        circle.inside_circle(bad)


def test_vectorised_labels_agree_with_inside_circle():
    xs = circle.gen_data(500, seed=3)
    assert inside_circle_many(xs).tolist() == [circle.inside_circle(x) for x in xs]


def test_gen_data_is_uniform_on_the_square_and_reproducible():
    xs = circle.gen_data(4000, seed=0)
    assert xs.shape == (4000, 2) and xs.dtype == np.float64
    assert xs.min() >= 0.0 and xs.max() <= 1.5
    assert abs(xs.mean() - 0.75) < 0.03          # uniform on [0, 1.5]
    assert np.array_equal(xs, circle.gen_data(4000, seed=0))
    assert not np.array_equal(xs, circle.gen_data(4000, seed=1))
    assert not np.array_equal(circle.gen_data(10), circle.gen_data(10))   # no seed: fresh


@pytest.mark.parametrize("num", [-1, 2.5, "10", True])
def test_gen_data_rejects_bad_counts(num):
    with pytest.raises(ValueError, match="num"):
        circle.gen_data(num)


def test_gen_test_stays_in_the_box_and_is_reproducible():
    xs = circle.gen_test(1000, (0.7, 0.85), (0.86, 0.9), seed=5)
    assert xs.shape == (1000, 2)
    assert xs[:, 0].min() >= 0.7 and xs[:, 0].max() <= 0.85
    assert xs[:, 1].min() >= 0.86 and xs[:, 1].max() <= 0.9
    assert np.array_equal(xs, circle.gen_test(1000, (0.7, 0.85), (0.86, 0.9), seed=5))


@pytest.mark.parametrize("x1_bound, x2_bound", [
    ((0.9, 0.8), (0.0, 1.0)),        # lower > upper
    ((0.0, float("inf")), (0.0, 1.0)),
    ((0.0,), (0.0, 1.0)),
    ("ab", (0.0, 1.0)),
])
def test_gen_test_rejects_bad_bounds(x1_bound, x2_bound):
    with pytest.raises(ValueError, match="x1_bound"):
        circle.gen_test(10, x1_bound, x2_bound)


def test_circle_data_labels_are_float_column_matching_ground_truth():
    xs = circle.gen_data(300, seed=0)
    data = circle.CircleData(xs, circle.inside_circle)
    assert data.X.shape == (300, 2) and data.X.dtype == torch.float32
    assert data.Y.shape == (300, 1) and data.Y.dtype == torch.float32
    assert data.Y[:, 0].tolist() == [float(circle.inside_circle(x)) for x in xs]


def test_circle_data_train_loader_shuffles_all_points_in_batches():
    xs = circle.gen_data(250, seed=0)
    data = circle.CircleData(xs, circle.inside_circle, batch_size=100)
    loader = data.get_dataloader(train=True)
    batches = list(loader)
    assert len(loader) == 3 and [len(X) for X, _ in batches] == [100, 100, 50]
    X = torch.cat([X for X, _ in batches])
    Y = torch.cat([Y for _, Y in batches])
    assert X.shape == (250, 2) and Y.shape == (250, 1)
    assert not torch.equal(X, data.X)                              # shuffled
    where = {tuple(row): i for i, row in enumerate(data.X.tolist())}
    order = torch.tensor([where[tuple(row)] for row in X.tolist()])
    assert sorted(order.tolist()) == list(range(250))              # each point once
    assert torch.equal(Y, data.Y[order])                           # labels stay with points


def test_circle_data_without_validation_has_no_val_loader():
    data = circle.CircleData(circle.gen_data(50, seed=0), circle.inside_circle)
    assert data.get_dataloader(train=False) is None
    assert data.val_dataloader() is None


def test_circle_data_validation_split_is_disjoint_and_ordered():
    data = circle.CircleData(circle.gen_data(1000, seed=0), circle.inside_circle,
                             batch_size=64, val_fraction=0.2, seed=1)
    assert len(data.val_indices) == 200 and len(data.train_indices) == 800
    assert not set(data.val_indices.tolist()) & set(data.train_indices.tolist())
    X_val = torch.cat([X for X, _ in data.get_dataloader(train=False)])
    assert torch.equal(X_val, data.X[data.val_indices])           # in order, every epoch
    again = circle.CircleData(circle.gen_data(1000, seed=0), circle.inside_circle,
                              val_fraction=0.2, seed=1)
    assert torch.equal(again.val_indices, data.val_indices)       # same seed, same split


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size"), ({"val_fraction": 1.0}, "val_fraction"),
    ({"val_fraction": -0.1}, "val_fraction"),
])
def test_circle_data_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        circle.CircleData(circle.gen_data(10, seed=0), circle.inside_circle, **kwargs)


def test_circle_data_rejects_points_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        circle.CircleData(np.zeros((10, 3)), circle.inside_circle)
