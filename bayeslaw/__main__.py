"""``python -m bayeslaw`` runs the command-line interface."""

import sys

from bayeslaw.cli import main

sys.exit(main(prog_name="bayeslaw"))
