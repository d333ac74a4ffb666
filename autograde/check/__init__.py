"""The check phase: the instructor's tests against objects rebuilt from the run's artifacts.

It runs in a fresh process (:mod:`autograde.check.runner`) that never sees student code: the
tests come from the instructor's source notebook (:mod:`autograde.check.source`), the objects
from plain data (:mod:`autograde.artifacts`, :mod:`autograde.check.rebuild`).
"""
