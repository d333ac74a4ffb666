"""The run phase: execute a student's notebook in a sandbox and export plain data.

This package is the only grading code that ever runs next to student code: the runner
(:mod:`~autograde.run.runner`), the kernel launcher (:mod:`~autograde.run.kernel`) and the
exporter (:mod:`~autograde.run.export`) run inside the sandbox; :mod:`~autograde.run.phase`
prepares the box and starts them from outside. Kept empty, so that the exporter, imported in the
student's kernel, loads nothing it does not need.
"""
