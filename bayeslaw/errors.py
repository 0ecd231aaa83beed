"""Exceptions raised by bayeslaw. Every message names what is wrong and where."""


class BayeslawError(Exception):
    """Base class for all errors bayeslaw raises on purpose."""


class DataError(BayeslawError, ValueError):
    """A run table is malformed: the message names the column, the rows and the rule."""


class PriorError(BayeslawError, ValueError):
    """A prior is invalid: the message names the parameter and the allowed set."""


class LawError(BayeslawError, KeyError):
    """An unknown law, or a law that does not match a saved fit."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class FitFileError(BayeslawError, ValueError):
    """A saved fit cannot be read, or does not belong to the law asked for."""


class ConvergenceWarning(UserWarning):
    """The sampler did not converge; the message says which check failed and the remedy."""
