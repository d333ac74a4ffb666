"""The kit's packages, named once: what students get, what the sandbox shows, what the grader is.

Every list of packages elsewhere is derived from these names:

- the student repository (:mod:`autograde.student_repo`) ships :data:`STUDENT_PACKAGES`, and each
  of :data:`OPTIONAL_MODULES` that the kit holds (as a package or as a single module);
- the run phase's sandbox (:mod:`autograde.run.sandbox`) binds :data:`SANDBOX_PACKAGES` read-only,
  plus ``autograde/run`` alone of the grader (:data:`SANDBOX_GRADER_PART`): the student's kernel
  imports the kit's helpers and the exporter, and never sees the check, the instructor's notebook
  or anything else of ``autograde``;
- the Gradescope zip (:mod:`autograde.gradescope`) ships :data:`KIT_PACKAGES`, the whole kit, and
  the ledger (:mod:`autograde.ledger`) digests the same packages to know when a grade is stale.
"""
from __future__ import annotations

STUDENT_PACKAGES: tuple[str, ...] = ("verifier", "circle", "mnist_tools")  # what the notebook imports
OPTIONAL_MODULES: tuple[str, ...] = ("labseed",)  # the seed: shipped and shown when the kit has it
SANDBOX_PACKAGES: tuple[str, ...] = STUDENT_PACKAGES + OPTIONAL_MODULES  # what student code may import
SANDBOX_GRADER_PART = "autograde/run"  # the one part of the grader visible in the sandbox
KIT_PACKAGES: tuple[str, ...] = SANDBOX_PACKAGES + ("autograde",)  # everything a grader needs
