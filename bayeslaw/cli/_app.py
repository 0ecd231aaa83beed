"""The typer app, its command registration, and ``main``: every error one line, the exit code returned."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONVERGED = 3
LARGE_TABLE = 100_000  # runs from which the fit command says that sampling will be slow
MAX_TOTAL_DRAWS = 1_000_000  # chains x draws kept (the second attempt holds 4 times as many while sampling)


class _App(typer.Typer):
    """The typer app, called as a program: errors as one line (``main``), the exit code returned to the shell."""

    def __call__(self, args: Sequence[str] | None = None, prog_name: str | None = None, **_: Any) -> NoReturn:
        sys.exit(main(args, prog_name=prog_name or "bayeslaw"))


def _plain_flags(params: list) -> list:
    """Help says what to type: flags show no value type (never ``<bool>``), an argument only its metavar (RUNS, PATH;
    never ``<path>``)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if isinstance(param, typer.core.TyperArgument) and param.metavar is not None:
            param.display_type_rich = lambda ctx: None
    return params


class _Command(typer.core.TyperCommand):
    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))


COMMANDS = ("laws", "models", "fit", "summary", "demo", "predict", "plan", "compare", "plot", "report", "calibrate")


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))

    def list_commands(self, ctx) -> list[str]:
        """The commands in the order of the workflow (COMMANDS), whatever order their modules registered them."""
        return sorted(super().list_commands(ctx), key=lambda n: COMMANDS.index(n) if n in COMMANDS else len(COMMANDS))


app = _App(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=_Group,
           help="Bayesian scaling laws: fit a law to training runs with NUTS, inspect the posterior. "
                "Exit codes: 0 done, 1 bad input or failed work, 2 usage error, 3 not converged. List options take "
                "repeated options or commas: --budget 1e22 --budget 1e24, or --budget 1e22,1e24.")


def _version(value: bool) -> None:
    if value:
        from bayeslaw import __version__

        typer.echo(f"bayeslaw {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Bayesian scaling laws: fit a law to training runs with NUTS, inspect the posterior."""


def _command(name: str, **settings: Any):
    """Register a command of the app (help without value types for flags)."""
    return app.command(name, cls=_Command, **settings)


def _one_line(text: Any, width: int = 2000) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[:width - 3] + "..."


def main(argv: Sequence[str] | None = None, prog_name: str = "bayeslaw") -> int:
    """Run the command line ``argv`` (default: the process's arguments) and return its exit code.

    Usage errors found by the parser print one line and return 2; any error not foreseen prints one line
    naming it and returns 1 (set BAYESLAW_DEBUG=1 to see the traceback)."""
    from typer import _click

    command = typer.main.get_command(app)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            result = command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name=prog_name,
                                  standalone_mode=False)
    except _click.exceptions.NoArgsIsHelpError as err:
        typer.echo(err.ctx.get_help() if err.ctx else "usage: bayeslaw COMMAND [OPTIONS]")
        return EXIT_USAGE
    except _click.exceptions.UsageError as err:
        where = f" (see {err.ctx.command_path} --help)" if err.ctx is not None else ""
        typer.echo(f"error: {_one_line(err.format_message())}{where}", err=True)
        return EXIT_USAGE
    except _click.exceptions.ClickException as err:
        typer.echo(f"error: {_one_line(err.format_message())}", err=True)
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("error: interrupted", err=True)
        return 130
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else EXIT_ERROR
    except MemoryError:
        typer.echo("error: out of memory; use a smaller table or fewer draws", err=True)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as err:  # a bug: one line, never a traceback
        if os.environ.get("BAYESLAW_DEBUG"):
            raise
        typer.echo(f"error: internal error ({type(err).__name__}: {_one_line(err, 300)}); please report it with "
                   "the command (BAYESLAW_DEBUG=1 shows the traceback)", err=True)
        return EXIT_ERROR
    return result if isinstance(result, int) else 0
