"""Every tuning knob of ``verify()``'s search, one commented line each.

The search reads these at call time (``settings.HARD_AFTER``, never a copy made at
import), so a test or a benchmark can change one with ``monkeypatch.setattr``.
None of them affects soundness: they choose how much work goes where, never what
counts as a proof (that is ``verifier.rounding`` and ``verifier.property``).
"""
from __future__ import annotations

# -- strategy ---------------------------------------------------------------------
ALPHA_MIN_FREE = 8          # alpha-CROWN at the root only for boxes with more free inputs
RELU_SPLIT_MIN_FREE = 16    # split ReLUs instead of the input box above this many free inputs

# -- bounds (verifier.bounds) -------------------------------------------------------
ALPHA_ITERATIONS = 20       # alpha-CROWN's optimisation steps on a whole box
FIXED_STEPS = 5             # alpha-CROWN's steps when the intermediate bounds are given
GROUP = 128                 # boxes per auto-LiRPA call when they come with reference bounds
CHUNK_BYTES = 2.5e8         # memory one auto-LiRPA call may use for its A matrices, bytes

# -- input splitting (verifier.bab) -----------------------------------------------------
HARD_AFTER = 2000           # boxes before every box also gets the second pass and alpha-CROWN
HARD_PROBE = 8              # after that, every this-many rounds the mode not in favour is tried
FIRST_BATCH = 64            # boxes split in the first round; doubled while rounds are quick
MAX_BATCH = 4096            # most boxes split in one round
QUICK_ROUND = 0.25          # seconds: a round quicker than this doubles the batch
MAX_ROUND = 2.0             # seconds: the longest round we plan (also half the time left)
ROUND_COST_FACTOR = 4       # a subproblem's bound (with what branching needs) against CROWN's on
                            #   the whole box: sizes a first round before any has been timed
REFERENCE_BYTES = 1e9       # memory for the open boxes' ReLU-input bounds, bytes
MAX_BOXES = 2_000_000       # open boxes before the search gives up

# -- ReLU splitting (verifier.relu_bab) ---------------------------------------------------
RELU_BATCH = 128            # open subproblems bounded together in one round
BETA_ROOT_STEPS = 40        # optimisation steps of the slopes on the whole box, before splitting
BETA_STEPS = 8              # optimisation steps of the slopes and split multipliers per round
BETA_LR = 0.2               # step size of those optimisation steps (Adam)
RELU_LAYER_GAIN = 5.0       # a split's score times this for each ReLU layer after it (relu_bab._scores)
RELU_MAX_DOMAINS = 200_000  # open subproblems before the search gives up
RELU_ATTACK_EVERY = 8       # rounds between two PGD attacks during the search
RELU_MEMORY_BYTES = 1.5e9   # memory one round's bounding may use, bytes
RELU_STORE_BYTES = 1.5e9    # memory the open subproblems may hold, bytes (caps their number)

# -- attacks (verifier.attack) --------------------------------------------------------
ROOT_PGD_STEPS = 40         # PGD steps before any search
ROOT_ATTACK_SHARE = 0.25    # of the time left, what the attacks before the search may use
BAB_PGD_STEPS = 10          # PGD steps inside the worst open boxes, every round
SWEEP_POINTS = 4096         # random points (half on the box's faces) scored before PGD
IMAGE_MIN_FREE = 64         # boxes with more free inputs than this get the image attack
IMAGE_RESTARTS = 8          # random restarts per target class in the image attack
IMAGE_STEPS = 60            # PGD steps of each restart in the image attack
