"""Neural-network verification for Lab 3, on auto-LiRPA's CROWN bounds.

Importing this package first makes auto-LiRPA 0.3 work on torch 2.14 (see
``verifier.compat``); everything else builds on that.
"""
from verifier import compat

compat.apply()
