"""Challenges: inputs the grader draws at grading time, answered by the student's code in the run.

The run phase evaluates the student's network and loss on these inputs and exports the answers;
the check phase draws the same inputs again from the same seed (the seed never leaves the
grader before the run starts) and compares. A network whose exported chain is not the network
that ran, or a loss that is not the negative log-likelihood, shows up as a mismatch. Faking an
answer means computing it, which is the work itself.

Plain numpy, seeded: the same seed gives the same inputs on both sides of the boundary.
"""
from __future__ import annotations

import numpy as np

NETWORK_ROWS = 16  # inputs per network challenge
INPUT_RANGE = (-0.5, 1.5)  # covers the circle's plane and MNIST pixels (0..1)
LOSS_BATCH_SIZES = (5, 8, 13)
LOSS_FLOOR = 0.01  # challenge probabilities stay above this, so log(p + 1e-6) and log(p) agree


def network_inputs(seed: int, n_in: int) -> np.ndarray:
    """float32 inputs of shape (NETWORK_ROWS, n_in), uniform in INPUT_RANGE."""
    rng = np.random.default_rng([seed, 1, n_in])
    return rng.uniform(*INPUT_RANGE, size=(NETWORK_ROWS, n_in)).astype(np.float32)


def loss_inputs(seed: int, classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(probabilities (batch, classes) float32, labels (batch,) int64) pairs.

    The first ones are ordinary predictions, each probability at least LOSS_FLOOR; the last is
    a confident one: probability exactly 1 for one class and 0 for the others, with one label
    right and one wrong (a loss that takes log(0) is infinite there).
    """
    rng = np.random.default_rng([seed, 2, classes])
    pairs = []
    for size in LOSS_BATCH_SIZES:
        logits = 2.0 * rng.standard_normal((size, classes))
        soft = np.exp(logits - logits.max(axis=1, keepdims=True))
        soft /= soft.sum(axis=1, keepdims=True)
        probs = (1 - classes * LOSS_FLOOR) * soft + LOSS_FLOOR
        pairs.append((probs.astype(np.float32), rng.integers(0, classes, size).astype(np.int64)))
    chosen = int(rng.integers(0, classes))
    certain = np.zeros((2, classes), dtype=np.float32)
    certain[:, chosen] = 1.0
    pairs.append((certain, np.array([chosen, (chosen + 1) % classes], dtype=np.int64)))
    return pairs
