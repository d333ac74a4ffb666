"""``python -m autograde``: see :mod:`autograde.cli`."""
import sys

from autograde.cli import main

sys.exit(main())
