"""The models/ catalogue: named law specifications and published fits, one TOML file per entry.

An entry names a law of the registry, its priors (law defaults or overrides: a changed prior is a
new name), its conventions (what N counts, C = 6 N D or C = M D, loss units), its source and, where
the paper published them, its fitted constants with their uncertainty and the paper's test vectors.
The schema is documented in models/README.md.

- ``api``: finding and reading entries, ``entry_posterior``, ``fit_entry``;
- ``schema``: the checks of an entry file, with errors naming file, field and rule;
- ``draws``: draws of published constants from the uncertainty the paper gave.
"""

from bayeslaw.catalogue.api import (
    MAX_ENTRY_BYTES,
    Entry,
    catalogue_dir,
    entry_posterior,
    fit_entry,
    list_entries,
    load_entry,
)
from bayeslaw.catalogue.draws import MAX_REDRAWS, draw_constants
from bayeslaw.catalogue.schema import (
    ALLOCATION,
    KINDS,
    LAW_DEFAULTS,
    MAX_LOG_SD,
    MAX_RELATIVE_SD,
    SCALES,
    SOURCE_FIELDS,
    TOP_LEVEL,
    CatalogueError,
    ParamUncertainty,
    TestVector,
    Uncertainty,
)

__all__ = ["ALLOCATION", "KINDS", "LAW_DEFAULTS", "MAX_ENTRY_BYTES", "MAX_LOG_SD", "MAX_REDRAWS", "MAX_RELATIVE_SD",
           "SCALES", "SOURCE_FIELDS", "TOP_LEVEL", "CatalogueError", "Entry", "ParamUncertainty", "TestVector",
           "Uncertainty", "catalogue_dir", "draw_constants", "entry_posterior", "fit_entry", "list_entries",
           "load_entry"]
