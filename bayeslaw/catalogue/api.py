"""The catalogue's entry API: find, read and use the entries of models/ (one TOML file per entry).

``list_entries()`` names them, ``load_entry(name)`` reads and validates one into an :class:`Entry`
(``schema``), ``entry_posterior(name)`` draws a published fit's constants (``draws``) into a
:class:`~bayeslaw.posterior.LawPosterior`, ``fit_entry(name, runs)`` fits the entry's law with its priors.

The catalogue ships in the wheel as ``bayeslaw/models`` (pyproject ``force-include``); in a source
checkout it is read from the top-level ``models/``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from bayeslaw._draws import SAMPLE_DIMS, unflat
from bayeslaw.catalogue.draws import draw_constants
from bayeslaw.catalogue.schema import CatalogueError, TestVector, Uncertainty, validate
from bayeslaw.files import check_readable
from bayeslaw.laws import Law
from bayeslaw.posterior import LawPosterior
from bayeslaw.priors import Prior

MAX_ENTRY_BYTES = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One catalogue entry (see models/README.md for the file schema)."""

    name: str
    law: Law
    title: str
    source: Mapping[str, str]
    conventions: Mapping[str, str]
    prior_overrides: Mapping[str, str]
    priors: Mapping[str, Prior]  # every model prior: law defaults updated by the overrides
    likelihood: str
    constants: Mapping[str, float] | None
    uncertainty: Uncertainty | None
    test_vectors: tuple[TestVector, ...]
    path: Path

    @property
    def citation(self) -> str:
        arxiv = f", arXiv:{self.source['arxiv']}" if self.source.get("arxiv") else ""
        return f"{self.source['citation']}{arxiv}"

    def posterior(self, draws: int = 4000, seed: int | None = 0) -> LawPosterior:
        """Draws from the published estimates and their uncertainty (``bayeslaw.catalogue.draws``)."""
        if self.constants is None or self.uncertainty is None:
            raise CatalogueError(f"entry '{self.name}' publishes no constants (a prior specification): fit it, "
                                 f"e.g. bayeslaw.catalogue.fit_entry('{self.name}', runs)")
        if draws < 1:
            raise CatalogueError(f"draws must be >= 1, got {draws}")
        values = draw_constants(self.name, self.constants, self.uncertainty, draws,
                                np.random.default_rng(seed))
        data = {name: (SAMPLE_DIMS, unflat(values[name], 1)) for name in self.law.published}
        count = "" if self.uncertainty.kind == "none" else f" ({draws} draws)"
        return LawPosterior(self.law, xr.Dataset(data), likelihood=None,
                            source=f"{self.name}: {self.uncertainty.label}{count}")


# --- finding and reading entries ---------------------------------------------------------------------

def catalogue_dir() -> Path:
    """The folder of entries: ``bayeslaw/models`` in an installed wheel, ``models/`` in a checkout."""
    here = Path(__file__).resolve().parents[1]  # bayeslaw/
    for candidate in (here / "models", here.parent / "models"):
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    raise CatalogueError(f"the model catalogue is missing: no *.toml under {here / 'models'} or "
                         f"{here.parent / 'models'}")


def list_entries() -> list[str]:
    """Names of every catalogue entry, sorted."""
    return sorted(p.stem for p in catalogue_dir().glob("*.toml"))


def load_entry(name: str | Path) -> Entry:
    """The entry called ``name``, or one read from a ``.toml`` file path; validated on loading."""
    path = Path(name)
    if path.suffix != ".toml":
        path = catalogue_dir() / f"{name}.toml"
        if not path.is_file():
            raise CatalogueError(f"unknown model '{name}'; catalogue entries: {', '.join(list_entries())}")
    else:
        check_readable(path, "a catalogue entry file", CatalogueError)
    if path.stat().st_size > MAX_ENTRY_BYTES:
        raise CatalogueError(f"{path.name}: {path.stat().st_size} bytes is too large for a catalogue entry "
                             f"(at most {MAX_ENTRY_BYTES})")
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise CatalogueError(f"{path.name}: not valid TOML ({err})") from None
    except (RecursionError, MemoryError):
        raise CatalogueError(f"{path.name}: not a catalogue entry (its TOML nests too deeply to read)") from None
    except OSError as err:
        raise CatalogueError(f"{path}: cannot read the file ({err.strerror or err})") from None
    return Entry(**validate(raw, path), path=path)


def entry_posterior(name: str | Path, draws: int = 4000, seed: int | None = 0) -> LawPosterior:
    """A LawPosterior drawn from entry ``name``'s published estimates and uncertainty, no data needed."""
    return load_entry(name).posterior(draws, seed)


def fit_entry(name: str | Path, data: Any, **kwargs: Any):
    """Fit entry ``name``'s law to ``data`` with the entry's priors and likelihood (``bayeslaw.fit``)."""
    from bayeslaw.fit import fit

    entry = load_entry(name)
    kwargs.setdefault("likelihood", entry.likelihood)
    return fit(entry.law, data, priors=dict(entry.prior_overrides), **kwargs)
