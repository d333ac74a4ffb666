"""auto-LiRPA 0.3 on torch 2.14: bounds are sound and importing is quiet."""
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import verifier  # noqa: F401  (applies the compatibility layer)
from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm

SAMPLES = 10_000
FLOAT_NOISE = 1e-5


def random_net(sizes, seed, flatten=False):
    g = torch.Generator().manual_seed(seed)
    layers = [nn.Flatten()] if flatten else []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        lin = nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(n_out, n_in, generator=g) / n_in**0.5)
            lin.bias.copy_(torch.randn(n_out, generator=g) * 0.1)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def lirpa_bounds(net, lo, hi, method):
    centre = (lo + hi) / 2
    bounded = BoundedModule(net, torch.zeros_like(centre))
    x = BoundedTensor(centre, PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))
    lb, ub = bounded.compute_bounds(x=(x,), method=method)
    return lb.detach(), ub.detach()


CASES = [  # (layer sizes, seed, box half-width, flatten first)
    ([2, 16, 16, 1], 0, 0.5, False),
    ([2, 32, 32, 1], 1, 0.1, False),
    ([5, 20, 20, 20, 3], 2, 0.3, False),
    ([10, 50, 10], 3, 1.0, True),
    ([3, 8, 8, 8, 8, 2], 4, 0.05, False),
    ([5, 50, 50, 50, 1], 7, 1.0, False),  # wide box: many unstable ReLUs, alpha has work to do
]


@pytest.mark.parametrize("sizes,seed,half_width,flatten", CASES)
def test_crown_and_alpha_crown_bounds_contain_every_sampled_output(sizes, seed, half_width, flatten):
    net = random_net(sizes, seed, flatten)
    g = torch.Generator().manual_seed(100 + seed)
    centre = torch.randn(1, sizes[0], generator=g)
    lo, hi = centre - half_width, centre + half_width

    xs = lo + (hi - lo) * torch.rand(SAMPLES, sizes[0], generator=g)
    with torch.no_grad():
        ys = net(xs)

    crown = lirpa_bounds(net, lo, hi, "CROWN")
    alpha = lirpa_bounds(net, lo, hi, "alpha-CROWN")
    for lb, ub in (crown, alpha):
        assert lb.shape == ub.shape == (1, sizes[-1])
        assert (ys >= lb - FLOAT_NOISE).all(), "a sampled output lies below the lower bound"
        assert (ys <= ub + FLOAT_NOISE).all(), "a sampled output lies above the upper bound"
    # alpha-CROWN optimises CROWN's relaxation: never looser, up to float noise
    assert (alpha[0] >= crown[0] - FLOAT_NOISE).all()
    assert (alpha[1] <= crown[1] + FLOAT_NOISE).all()


def test_bounds_are_not_vacuous():
    """Soundness alone is cheap (±inf is sound): CROWN must beat interval arithmetic here."""
    net = random_net([2, 32, 32, 1], 5)
    lo, hi = torch.full((1, 2), 0.4), torch.full((1, 2), 0.6)
    ibp_lb, ibp_ub = lirpa_bounds(net, lo, hi, "IBP")
    crown_lb, crown_ub = lirpa_bounds(net, lo, hi, "CROWN")
    assert (crown_ub - crown_lb < ibp_ub - ibp_lb).all()


def test_alpha_crown_tightens_a_loose_crown_bound():
    """alpha-CROWN must really optimise its slopes (torch 2.14's clamp once froze them)."""
    net = random_net([5, 50, 50, 50, 1], 7)
    lo, hi = torch.full((1, 5), -1.0), torch.full((1, 5), 1.0)
    crown_lb, crown_ub = lirpa_bounds(net, lo, hi, "CROWN")
    alpha_lb, alpha_ub = lirpa_bounds(net, lo, hi, "alpha-CROWN")
    assert (alpha_lb > crown_lb + 0.1 * (crown_ub - crown_lb)).all()
    assert (alpha_ub < crown_ub - 0.1 * (crown_ub - crown_lb)).all()


def test_opset_stays_at_twelve_for_lirpa():
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

    lirpa_bounds(random_net([2, 4, 1], 6), torch.zeros(1, 2), torch.ones(1, 2), "CROWN")
    assert GLOBALS.export_onnx_opset_version == verifier.compat.LIRPA_OPSET == 12


def test_import_does_not_change_global_warning_filters():
    code = textwrap.dedent(
        """
        import warnings
        import torch
        before = list(warnings.filters)
        import verifier
        assert warnings.filters == before, "importing verifier changed the warning filters"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_import_and_bounds_write_nothing_to_stderr():
    code = textwrap.dedent(
        """
        import torch
        from torch import nn
        import verifier
        from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
        net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        x = torch.zeros(1, 4)
        model = BoundedModule(net, x)
        bx = BoundedTensor(x, PerturbationLpNorm(norm=float("inf"), x_L=x - 1, x_U=x + 1))
        for method in ("IBP", "CROWN", "alpha-CROWN"):
            model.compute_bounds(x=(bx,), method=method)
        print("done")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("done")
    assert proc.stderr == ""


# numpy 2: auto-LiRPA 0.3 imports ``isin`` from numpy 1's ``numpy.lib.arraysetops``.

NUMPY2 = int(__import__("numpy").__version__.split(".")[0]) >= 2
COMPAT_PY = verifier.compat.__file__

# Loads verifier/compat.py on its own (``import verifier`` would apply it at once), with the
# numpy shim switched off when asked, applies it, and says whether auto-LiRPA imported.
APPLY_ALONE = textwrap.dedent(
    """
    import contextlib, importlib.util, sys
    spec = importlib.util.spec_from_file_location("compat_alone", sys.argv[1])
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
    if sys.argv[2] == "off":
        compat._numpy1_arraysetops = contextlib.nullcontext
    try:
        compat.apply()
    except ImportError as e:
        print("import failed:", e.name)
    else:
        import auto_LiRPA.operators.base as base
        print("imported", base.isin([1, 2], [2]).tolist(), compat.ARRAYSETOPS in sys.modules)
    """
)


def apply_alone(shim):
    proc = subprocess.run([sys.executable, "-c", APPLY_ALONE, COMPAT_PY, shim],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout.strip()


@pytest.mark.skipif(not NUMPY2, reason="numpy 1 still has numpy.lib.arraysetops")
def test_lirpa_import_needs_the_numpy_shim_on_numpy_2():
    assert apply_alone("off") == "import failed: numpy.lib.arraysetops"


def test_lirpa_imports_with_the_numpy_shim_and_leaves_numpy_as_it_was():
    # auto-LiRPA gets a working isin; the stand-in module is gone afterwards (numpy 1 keeps its own)
    assert apply_alone("on") == f"imported [False, True] {not NUMPY2}"


def test_numpy_shim_offers_isin_only_inside_its_block():
    import importlib

    import numpy

    name = verifier.compat.ARRAYSETOPS
    with verifier.compat._numpy1_arraysetops():
        module = importlib.import_module(name)
        assert module.isin(numpy.array([3, 4, 5]), [5, 3]).tolist() == [True, False, True]
    if NUMPY2:
        assert name not in sys.modules
        with pytest.raises(ImportError):
            importlib.import_module(name)


def test_quick_node_attributes_keep_what_module_setattr_guarantees():
    """Patch 9: a node attribute already in ``__dict__`` that gets a plain value is
    set directly; parameters, submodules and buffers still go through
    ``Module.__setattr__``, and bounds computed afterwards are unchanged."""
    from auto_LiRPA.operators.base import Bound

    assert Bound.__setattr__ is not nn.Module.__setattr__     # the patch is in place
    node = Bound()
    node.lower = torch.zeros(3)                       # first time: Module.__setattr__
    node.lower = torch.ones(3)                        # then directly
    assert torch.equal(node.lower, torch.ones(3)) and "lower" in node.__dict__
    node.w = nn.Parameter(torch.zeros(2))
    assert "w" in node._parameters and "w" not in node.__dict__
    with pytest.raises(TypeError, match="cannot assign"):
        node.w = torch.ones(2)                        # a plain tensor onto a parameter
    node.register_buffer("buf", torch.zeros(2))
    node.buf = torch.ones(2)
    assert torch.equal(node._buffers["buf"], torch.ones(2)) and "buf" not in node.__dict__
    node.sub = nn.Linear(2, 2)
    assert "sub" in node._modules
    node.lower = nn.Parameter(torch.zeros(3))         # a parameter where a plain value was
    assert "lower" in node._parameters and "lower" not in node.__dict__

    net = random_net([3, 16, 16, 2], seed=5)
    x = torch.zeros(1, 3)
    bounded = BoundedModule(net, x)
    ptb = PerturbationLpNorm(norm=float("inf"), x_L=x - 0.5, x_U=x + 0.5)
    first = bounded.compute_bounds(x=(BoundedTensor(x, ptb),), method="CROWN")
    again = bounded.compute_bounds(x=(BoundedTensor(x, ptb),), method="CROWN")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Bound, "__setattr__", nn.Module.__setattr__)
        slow = BoundedModule(net, x).compute_bounds(x=(BoundedTensor(x, ptb),), method="CROWN")
    for a, b, c in zip(first, again, slow):
        assert torch.equal(a, b) and torch.equal(a, c)
