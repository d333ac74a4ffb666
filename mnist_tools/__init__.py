"""The MNIST part of Lab 3: data that loads offline, perturbation boxes and their pictures.

``MNISTData`` (with ``provision_mnist`` behind it), ``plot_mnist``, ``perturb_one_pixel``,
``perturb_all_pixels``, ``show_perturbation``, ``show_counterexample``, and the kit's fast
``Trainer`` and ``info`` (the same objects as in ``circle``).
"""
from circle.console import info
from circle.training import Trainer
from mnist_tools.data import MNISTData
from mnist_tools.perturb import perturb_all_pixels, perturb_one_pixel
from mnist_tools.plots import plot_mnist, show_counterexample, show_perturbation
from mnist_tools.provision import MNISTUnavailableError, default_root, provision_mnist

__all__ = [
    "MNISTData", "MNISTUnavailableError", "Trainer", "default_root", "info",
    "perturb_all_pixels", "perturb_one_pixel", "plot_mnist", "provision_mnist",
    "show_counterexample", "show_perturbation",
]
