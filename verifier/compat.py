"""Make auto-LiRPA 0.3 (2022) work on torch 2.14 and numpy 2, from the outside.

auto-LiRPA on PyPI stops at 0.3, written for torch < 1.13 and numpy 1. It still
computes correct bounds on torch 2.14 and numpy 2 once the things it relies on are
put back. We patch them here, before ``auto_LiRPA`` is first imported, and never
edit site-packages:

1. ``torch.onnx.symbolic_helper._set_opset_version`` is gone. auto-LiRPA calls it
   with 12 before lowering the traced graph to ONNX ops; we give it a function that
   sets the TorchScript exporter's global opset (kept at 12, as auto-LiRPA expects).
2. ``torch.onnx.utils._optimize_graph`` is no longer re-exported there; we point it
   at the TorchScript exporter's function of the same name.
3. ``torch._C.Node.__getitem__`` (``node["value"]``) was removed; we restore it by
   dispatching on the attribute's kind (``node.kindOf(name)`` is ``"i"``, ``"f"``,
   ``"t"``, ``"is"``, ... and the getter of the same name reads it).
4. ``torch._six`` was removed; auto-LiRPA only uses ``torch._six.string_classes``.
5. Importing auto-LiRPA makes noise on stderr: ``torch.jit.script`` deprecation
   warnings (its decorators run at import) and, on machines with a CUDA toolkit but
   no GPU, a "No CUDA runtime is found" log line from ``torch.utils.cpp_extension``.
   We silence exactly those two messages, only while the patch is applied and
   auto-LiRPA is being imported.
6. alpha-CROWN with auto-LiRPA's default *sparse* alpha crashes on plain MLPs
   (``assert self.alpha_lookup_idx[...] is None`` or a shape mismatch, depending on
   which neurons are unstable). ``BoundedModule`` now defaults to dense alpha
   (``sparse_spec_alpha`` and ``sparse_features_alpha`` off); the bounds are the
   same, only stored densely. An explicit ``bound_opts`` value still wins.
7. alpha-CROWN never moved its slopes: torch 2.14's ``clamp`` passes no gradient at
   its bounds, and every ReLU slope alpha starts at exactly 0 or 1 (CROWN's choice),
   so all gradients were zero and alpha-CROWN returned CROWN's bounds. auto-LiRPA
   clips alpha into [0, 1] after every step, so we give ``BoundRelu._relu_mask_alpha``
   a clamp whose gradient passes on the closed interval [0, 1], as torch's used to.
8. numpy 2 made ``numpy.lib.arraysetops`` private (now ``numpy.lib._arraysetops_impl``);
   ``auto_LiRPA/operators/base.py`` does ``from numpy.lib.arraysetops import isin`` at
   import and never calls it. While auto-LiRPA is imported, and only when numpy has
   no such module, we register a stand-in that offers numpy's public ``isin``; it is
   taken out of ``sys.modules`` again afterwards, so nobody else sees it. That import
   is auto-LiRPA 0.3's only use of numpy that numpy 2 removed: its one ``np.bool``
   (in ``PerturbationSynonym``, for NLP models) is valid again since numpy 2.0, which
   requirements.txt asks for.

9. Speed, not correctness: auto-LiRPA keeps each pass's bounds and A matrices as
   attributes of its graph nodes, which are ``torch.nn.Module``s, and
   ``Module.__setattr__`` checks every assignment against parameters, submodules and
   buffers (``isinstance`` against ``Parameter``, whose metaclass makes that slow).
   Branch and bound on ACAS Xu makes about 20,000 such assignments a second: 12% of
   its time. A node attribute that already lives in the instance's ``__dict__`` and
   gets a plain tensor, number, tuple, list, dict or None cannot be a parameter, a
   submodule or a buffer (``Module`` keeps those out of ``__dict__``), so that one
   assignment is done directly; everything else goes through ``Module.__setattr__``
   as before.

``apply()`` is idempotent and is called by ``import verifier``.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import types
import warnings
from typing import Iterator

import numpy
import torch

#: The ONNX opset auto-LiRPA 0.3 was written against.
LIRPA_OPSET = 12

_applied = False


def _set_opset_version(opset_version: int) -> None:
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

    GLOBALS.export_onnx_opset_version = opset_version


def _node_getitem(node: "torch._C.Node", name: str):
    """``node[name]``: read a TorchScript node attribute whatever its kind."""
    return getattr(node, node.kindOf(name))(name)


def _patch_torch() -> None:
    import torch.onnx.symbolic_helper as symbolic_helper
    import torch.onnx.utils as onnx_utils
    from torch.onnx._internal.torchscript_exporter import utils as ts_utils

    if not hasattr(symbolic_helper, "_set_opset_version"):
        symbolic_helper._set_opset_version = _set_opset_version
    if not hasattr(onnx_utils, "_optimize_graph"):
        onnx_utils._optimize_graph = ts_utils._optimize_graph
    if not hasattr(torch._C.Node, "__getitem__"):
        torch._C.Node.__getitem__ = _node_getitem
    if "torch._six" not in sys.modules:
        six = types.ModuleType("torch._six")
        six.string_classes = (str, bytes)
        sys.modules["torch._six"] = six
        torch._six = six
    # auto-LiRPA traces at opset 12; set it now too, so the first trace sees it.
    _set_opset_version(LIRPA_OPSET)


class _DropCudaHomeNotice(logging.Filter):
    """Drops cpp_extension's "No CUDA runtime is found" notice (GPU-less machines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No CUDA runtime is found")


_IMPORT_NOISE = ("`torch.jit.script` is deprecated",)


@contextlib.contextmanager
def _quiet_lirpa_import() -> Iterator[None]:
    """Hold back the known import noise; re-emit any other warning unchanged.

    auto-LiRPA calls ``warnings.simplefilter("once")`` at import, which would beat
    an "ignore" filter of ours, so we record instead of filtering. Leaving the
    ``catch_warnings`` block also undoes that global filter change.
    """
    cpp_logger = logging.getLogger("torch.utils.cpp_extension")
    notice_filter = _DropCudaHomeNotice()
    cpp_logger.addFilter(notice_filter)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        cpp_logger.removeFilter(notice_filter)
    for w in caught:
        if not str(w.message).startswith(_IMPORT_NOISE):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


#: Bound options that ``BoundedModule`` gets unless the caller says otherwise.
DENSE_ALPHA_OPTS = {"sparse_spec_alpha": False, "sparse_features_alpha": False}


def _default_to_dense_alpha() -> None:
    from auto_LiRPA import BoundedModule

    original_init = BoundedModule.__init__
    if getattr(original_init, "_lab3_dense_alpha", False):
        return

    def __init__(self, model, global_input, bound_opts=None, *args, **kwargs):
        bound_opts = {**DENSE_ALPHA_OPTS, **(bound_opts or {})}
        original_init(self, model, global_input, bound_opts, *args, **kwargs)

    __init__._lab3_dense_alpha = True
    BoundedModule.__init__ = __init__


def _unit_clamp(alpha: torch.Tensor) -> torch.Tensor:
    """``alpha.clamp(0, 1)`` with gradient 1 on the closed interval [0, 1] (0 outside)."""
    inside = (alpha >= 0) & (alpha <= 1)
    return torch.where(inside, alpha, alpha.detach().clamp(0.0, 1.0))


def _relu_mask_alpha(lower, upper, lb_lower_d, ub_lower_d):
    """ReLU lower-bound slopes: 1 where always active, 0 where always off, alpha between."""
    active = (lower >= 0).to(lower.dtype)
    off = upper <= 0
    unstable = (1.0 - active) * (1.0 - off.to(upper.dtype))

    def slope(alpha):
        return None if alpha is None else _unit_clamp(alpha) * unstable + active

    return slope(lb_lower_d), slope(ub_lower_d), off.all()


def _let_alpha_learn() -> None:
    from auto_LiRPA.operators.activation import BoundRelu

    BoundRelu._relu_mask_alpha = staticmethod(_relu_mask_alpha)


#: Value types a node attribute may get directly (see 9. above); exact types only, so
#: ``Parameter`` (a ``Tensor`` subclass) and every ``Module`` never match.
_PLAIN = frozenset({torch.Tensor, type(None), bool, int, float, str, tuple, list, dict})


def _quick_node_attributes() -> None:
    from auto_LiRPA.operators.base import Bound

    module_setattr = torch.nn.Module.__setattr__

    def __setattr__(self, name, value):
        if type(value) in _PLAIN and name in self.__dict__:
            object.__setattr__(self, name, value)
        else:
            module_setattr(self, name, value)

    Bound.__setattr__ = __setattr__


#: The numpy 1 module auto-LiRPA 0.3 imports ``isin`` from; numpy 2 made it private.
ARRAYSETOPS = "numpy.lib.arraysetops"


@contextlib.contextmanager
def _numpy1_arraysetops() -> Iterator[None]:
    """While the block runs, ``from numpy.lib.arraysetops import isin`` works on numpy 2.

    Does nothing when numpy still has the module (numpy 1). The stand-in is removed on
    the way out, so only the imports made inside the block ever see it.
    """
    try:
        importlib.import_module(ARRAYSETOPS)
    except ImportError:
        pass
    else:
        yield
        return
    stand_in = types.ModuleType(ARRAYSETOPS, "numpy 1's arraysetops, for auto-LiRPA 0.3's import")
    stand_in.isin = numpy.isin
    sys.modules[ARRAYSETOPS] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(ARRAYSETOPS) is stand_in:
            del sys.modules[ARRAYSETOPS]


def apply() -> None:
    """Patch torch and numpy for auto-LiRPA 0.3 and import it quietly. Safe to call twice."""
    global _applied
    if _applied:
        return
    with _quiet_lirpa_import(), _numpy1_arraysetops():
        _patch_torch()
        importlib.import_module("torch.utils.cpp_extension")
        importlib.import_module("auto_LiRPA")
    _default_to_dense_alpha()
    _let_alpha_learn()
    _quick_node_attributes()
    _applied = True
