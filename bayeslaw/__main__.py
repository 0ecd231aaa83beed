"""``python -m bayeslaw`` runs the command-line interface."""

from bayeslaw.cli import app

app(prog_name="bayeslaw")
