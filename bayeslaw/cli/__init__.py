"""The ``bayeslaw`` command: laws, models, fit, summary, demo, predict, plan, compare, plot, report, calibrate.

Every error is one line on stderr starting with ``error:``, never a traceback. Exit codes: 0 done;
1 an input or the work failed (a bad run table, fit or catalogue file, an option naming what the inputs
do not have, an output that cannot be written); 2 a usage error, found before any file is read (an
unknown command, option or law, a missing argument, a value of the wrong form or out of its range,
options that conflict); 3 a fit did not converge.

One module per command group (``listing``, ``fitting``, ``decisions``, ``scores``, ``figures``), each only
presenting what the library returns; ``_common`` holds what they share (the list grammar, the one budget parser,
the options declared once, JSON and file output); ``_app`` the typer app and ``main``.
"""

from bayeslaw.cli import decisions, figures, fitting, listing, scores  # noqa: F401  (registers the commands)
from bayeslaw.cli._app import EXIT_ERROR, EXIT_NOT_CONVERGED, EXIT_USAGE, LARGE_TABLE, MAX_TOTAL_DRAWS, app, main
from bayeslaw.cli.scores import _print_comparison

__all__ = ["EXIT_ERROR", "EXIT_NOT_CONVERGED", "EXIT_USAGE", "LARGE_TABLE", "MAX_TOTAL_DRAWS", "_print_comparison",
           "app", "main"]
