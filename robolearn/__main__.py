"""``python -m robolearn`` (also what ``torchrun -m robolearn`` runs on every rank)."""

import sys

from robolearn.cli import main

sys.exit(main())
