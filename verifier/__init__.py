"""Neural-network verification for Lab 3, on auto-LiRPA's CROWN bounds.

Importing this package first makes auto-LiRPA 0.3 work on torch 2.14 (see
``verifier.compat``); everything else builds on that.
"""
from verifier import compat

compat.apply()

from verifier.engine import output_bounds, verify, verify_robustness  # noqa: E402
from verifier.outputs import Y, all_of, any_of, argmax_is  # noqa: E402
from verifier.result import VerificationResult  # noqa: E402

__all__ = ["verify", "verify_robustness", "output_bounds", "VerificationResult",
           "Y", "all_of", "any_of", "argmax_is"]
