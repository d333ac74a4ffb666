"""The MNIST part of Lab 3: data that loads offline, perturbation boxes and their pictures.

``MNISTData`` (with ``provision_mnist`` behind it), ``plot_mnist``, ``perturb_one_pixel``,
``perturb_all_pixels``, ``show_perturbation``, ``show_counterexample``, ``robust_radius`` (the
largest perturbation the verifier proves harmless) with ``show_radius_search``, and the kit's fast
``Trainer`` and ``info`` (the same objects as in ``circle``).

Names are imported on first use, so ``import mnist_tools.provision`` (what the grader needs to
prepare the data) does not pay for torch, torchvision and d2l.
"""
import importlib

_HOMES = {
    "info": "circle.console",
    "Trainer": "circle.training",
    "MNISTData": "mnist_tools.data",
    "perturb_all_pixels": "mnist_tools.perturb",
    "perturb_one_pixel": "mnist_tools.perturb",
    "plot_mnist": "mnist_tools.plots",
    "RadiusSearch": "mnist_tools.radius",
    "robust_radius": "mnist_tools.radius",
    "show_radius_search": "mnist_tools.radius",
    "show_counterexample": "mnist_tools.plots",
    "show_perturbation": "mnist_tools.plots",
    "MNISTUnavailableError": "mnist_tools.provision",
    "default_root": "mnist_tools.provision",
    "provision_mnist": "mnist_tools.provision",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'mnist_tools' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_HOMES))
