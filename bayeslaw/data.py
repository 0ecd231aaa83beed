"""Read and validate tables of training runs.

Canonical columns and units: ``N`` parameters, ``D`` training tokens, ``C`` training FLOPs,
``loss`` in nats/token (or the law's own target column). Common source names are mapped
(``Model Size`` -> N, ``Training FLOP`` -> C, ``val-loss`` -> loss, ...); units are never
converted silently. A missing input is derived only where the law's compute convention says how
(D = C / (6 N), N = C / (6 D), C = 6 N D; M = 72 n_layer d_model^2 + 12 n_layer d_model l_seq).

Every problem raises :class:`DataError` naming the column, the rows and the rule, before any
model is built.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayeslaw.errors import DataError
from bayeslaw.files import check_readable
from bayeslaw.laws import Law, get_law, model_scale
from bayeslaw.likelihoods import n_parameters
from bayeslaw.units import parse_count

ALIASES: dict[str, tuple[str, ...]] = {
    "N": ("n", "params", "parameters", "model size", "model_size", "n params", "num params",
          "n parameters", "num parameters", "param count"),
    "D": ("d", "tokens", "training tokens", "train tokens", "n tokens", "num tokens", "dataset size"),
    "C": ("c", "flops", "training flop", "training flops", "compute", "train flops"),
    "loss": ("loss", "val loss", "validation loss", "eval loss", "test loss", "final loss"),
    "U": ("u", "unique tokens", "tokens per epoch", "n unique tokens"),
    "epochs": ("epochs", "num epochs", "n epochs"),
    "S": ("s", "sparsity"),
    "experts": ("experts", "num experts", "n experts", "expert count"),
    "granularity": ("granularity",),
}
UNITS = {"N": "parameters", "D": "tokens", "C": "FLOPs", "loss": "nats/token", "U": "unique tokens",
         "epochs": "passes over the unique tokens", "S": "fraction of zero weights", "experts": "experts",
         "granularity": "d_ff / d_expert"}
# inputs whose valid range is not simply > 0: (check, rule as words)
RANGE_RULES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "S": (lambda v: (v >= 0) & (v < 1), "must lie in [0, 1) (a fraction of zero weights)"),
    "experts": (lambda v: v >= 1, "must be >= 1"),
    "granularity": (lambda v: v >= 1, "must be >= 1"),
}
RUN_ALIASES = ("run", "run id", "run name", "curve", "curve id")  # a column naming each row's run
_MAX_LISTED_ROWS = 8


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-/]+", " ", str(name).strip().lower())


@dataclass
class Runs:
    """A validated table of runs: canonical columns, plus what was mapped and derived."""

    frame: pd.DataFrame
    law: Law
    mapped: dict[str, str] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)
    published: str = ""  # the bayeslaw.datasets reader of the published table this was read from as distributed
    run_ids: np.ndarray | None = None  # each row's run id, where the table has a run column (learning curves)
    run_column: str = ""  # the source column of ``run_ids``

    @property
    def is_curves(self) -> bool:
        """True when some run has more than one row: checkpoints of learning curves (``bayeslaw.curves``)."""
        return self.run_ids is not None and len(pd.unique(self.run_ids)) < len(self.run_ids)

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        return {name: self.frame[name].to_numpy(dtype=float) for name in self.law.inputs}

    @property
    def target(self) -> np.ndarray:
        return self.frame[self.law.target].to_numpy(dtype=float)

    def __len__(self) -> int:
        return len(self.frame)

    def digest(self) -> str:
        """sha256 of the canonical columns the law uses (stored with saved fits)."""
        cols = [*self.law.inputs, self.law.target]
        payload = self.frame[cols].to_csv(index=False, float_format="%.17g").encode()
        return hashlib.sha256(payload).hexdigest()

    def notes(self) -> list[str]:
        """Plain sentences on what was mapped and derived, for the user to see."""
        out = [f"column '{src}' read as {dst} ({UNITS.get(dst, 'as given')})" for dst, src in self.mapped.items()
               if src != dst]
        out += [f"{col} derived as {rule}" for col, rule in self.derived.items()]
        if self.published:
            out.append(f"the table looks like a published one read as distributed (every row a run): "
                       f"bayeslaw.datasets.{self.published}(path) applies its paper's protocol")
        return out


MAX_TABLE_BYTES = 1 << 30  # reading holds the file about 5 times over in memory (text, parser, columns)
_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _records(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The header and, for each data record, the file line it starts on and its number of fields. Blank lines
    are skipped, as pandas does. Streams the records (nothing but two integers is kept per record)."""
    header: list[str] | None = None
    lines, counts, start = [], [], 1
    reader = csv.reader(io.StringIO(text))
    for record in reader:
        if len(record) > 1 or (record and record[0].strip()):
            if header is None:
                header = record
            else:
                lines.append(start)
                counts.append(len(record))
        start = reader.line_num + 1
    return header or [], np.asarray(lines, dtype=int), np.asarray(counts, dtype=int)


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 text (a BOM allowed), or a DataError naming the encoding or the first line that is not UTF-8."""
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            raise DataError(f"{path}: the file is {name} text; save it as UTF-8 (plain CSV)")
    if b"\x00" in raw[:4096]:
        raise DataError(f"{path}: not a CSV file (it holds binary data)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as "
                        "UTF-8") from None


def read_table(source: pd.DataFrame | str | os.PathLike) -> tuple[pd.DataFrame, np.ndarray | None]:
    """A DataFrame from a frame or a CSV path, and the file line of each row (None for a frame).

    A CSV must be UTF-8 with a header row and the same number of comma-separated fields on every row: a
    row with more fields than the header (an unquoted thousands separator, 8,061,898) would otherwise shift
    its values into the wrong columns."""
    if isinstance(source, pd.DataFrame):
        duplicated = source.columns[source.columns.duplicated()].unique().tolist()
        if duplicated:
            raise DataError(f"duplicate column names: {', '.join(map(str, duplicated))}; rename them")
        return source.reset_index(drop=True), None
    path = check_readable(source, "a CSV file of runs", DataError)
    try:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise DataError(f"{path}: the file is {size / 1e9:.3g} GB; bayeslaw reads tables up to "
                            f"{MAX_TABLE_BYTES / 1e9:.3g} GB (about 20 million runs): aggregate or subsample the runs")
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err})") from None
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; expected a CSV with a header row and one row per run")
    text = _decode(path, raw)
    del raw
    try:
        header, lines, counts = _records(text)
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV file ({err})") from None
    seen, duplicated = set(), []
    for name in header:
        if name in seen and name not in duplicated:
            duplicated.append(name)
        seen.add(name)
    if duplicated:
        raise DataError(f"{path}: duplicate column names in the header: {', '.join(duplicated)}")
    if len(header) < 2:
        used = next((words for d, words in _DELIMITERS.items() if d in (header or [""])[0]), None)
        hint = (f" separated by {used}; bayeslaw reads comma-separated files" if used else
                "; expected comma-separated columns such as N, D, loss")
        raise DataError(f"{path}: not a CSV table of runs: the header is a single column "
                        f"'{(header or [''])[0][:60]}'{hint}")
    if not len(lines):
        raise DataError(f"{path}: the file has a header but no rows of runs")
    ragged = counts != len(header)
    if ragged.any():
        first = int(np.flatnonzero(ragged)[0])
        more = counts[first] > len(header)
        hint = ("a comma inside a number (a thousands separator, as in 8,061,898, or a decimal comma) or an extra "
                "trailing comma; quote such fields or remove the separators" if more else
                "a value is missing; leave an empty field between commas for a missing value")
        names = ", ".join(header)[:80]
        others = int(ragged.sum()) - 1
        also = f" (and {others} other line{'s' if others > 1 else ''} with a different count)" if others else ""
        raise DataError(f"{path}: line {lines[first]} has {counts[first]} fields but the header has {len(header)} "
                        f"({names}){also}: {hint}")
    try:
        frame = pd.read_csv(io.StringIO(text), index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise DataError(f"{path}: not a readable CSV file ({str(err).strip().splitlines()[0]})") from None
    if len(lines) != len(frame):  # a CSV dialect the csv module reads differently from pandas
        lines = np.arange(len(frame)) + 2
    return frame, lines


def _rows(mask: np.ndarray, lines: np.ndarray | None, verb: tuple[str, str] = ("are", "is")) -> str:
    """'lines 3, 5 and 9 more are' / 'line 3 is' (file lines for a CSV, row positions for a frame)."""
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(lines[r]) if lines is not None else str(r) for r in rows[:_MAX_LISTED_ROWS])
    more = f" and {len(rows) - _MAX_LISTED_ROWS} more" if len(rows) > _MAX_LISTED_ROWS else ""
    what = "line" if lines is not None else "row"
    if len(rows) == 1:
        return f"{what} {shown} {verb[1]}"
    return f"{what}s {shown}{more} {verb[0]}"


def _map_columns(frame: pd.DataFrame, wanted: Sequence[str], columns: Mapping[str, str],
                 optional: Sequence[str] = ()) -> tuple[dict[str, str], dict[str, str]]:
    """For each canonical name, the source column that holds it (explicit mapping first).

    Ambiguity in a ``wanted`` name raises; in an ``optional`` one it is returned as a message, to
    be raised only if that column turns out to be needed.
    """
    mapped: dict[str, str] = {}
    ambiguous: dict[str, str] = {}
    for canonical, src in columns.items():
        if src not in frame.columns:
            raise DataError(f"column '{src}' (given for {canonical}) is not in the table; "
                            f"columns are: {', '.join(map(str, frame.columns))}")
        mapped[canonical] = src
    by_norm: dict[str, list[str]] = {}
    for col in frame.columns:
        by_norm.setdefault(_normalise(col), []).append(col)
    for canonical in [*wanted, *optional]:
        if canonical in mapped:
            continue
        names = (_normalise(canonical), *ALIASES.get(canonical, ()))
        hits = [col for n in dict.fromkeys(names) for col in by_norm.get(n, [])]
        if len(hits) > 1:
            message = (f"columns {', '.join(repr(h) for h in hits)} could each be {canonical}; "
                       f"say which with columns={{'{canonical}': ...}} (CLI: --column {canonical}=NAME)")
            if canonical not in wanted:
                ambiguous[canonical] = message
                continue
            raise DataError(message)
        if hits:
            mapped[canonical] = hits[0]
    return mapped, ambiguous


def _number_hint(example: Any) -> str:
    text = str(example).strip()
    if re.fullmatch(r"[+-]?\d{1,3}([,' ]\d{3})+(\.\d*)?", text):
        return " (a thousands separator?)"
    if re.fullmatch(r"[+-]?\d+,\d+", text):
        return " (a decimal comma? write a decimal point)"
    return ""


def _numeric(frame: pd.DataFrame, src: str, canonical: str, file_lines: np.ndarray | None,
             counts: bool = False) -> np.ndarray:
    """The column as floats; with ``counts`` also '2.8B' / '1.4T' (K, M, B, T: ``bayeslaw.units``)."""
    raw = frame[src]
    values = pd.to_numeric(raw, errors="coerce")
    if counts and values.isna().any():
        values = values.where(values.notna() | raw.isna(), raw.map(parse_count).astype(float))
    bad = values.isna() & raw.notna()
    if bad.any():
        example = raw[bad].iloc[0]
        suffixes = " (or counts like 2.8B, 1.4T)" if counts else ""
        raise DataError(f"column '{src}' ({canonical}): {_rows(bad.to_numpy(), file_lines)} not numeric "
                        f"(e.g. {example!r}){_number_hint(example)}; give numbers{suffixes} in "
                        f"{UNITS.get(canonical, 'the stated unit')}")
    arr = values.to_numpy(dtype=float)
    missing = ~np.isfinite(arr)
    if missing.any():
        raise DataError(f"column '{src}' ({canonical}): {_rows(missing, file_lines)} missing, NaN or "
                        "infinite; every run needs a finite value")
    return arr


def _reader_hint(columns) -> str:
    """'; this looks like ...' naming the reader in bayeslaw.datasets for a published table as distributed."""
    from bayeslaw import datasets

    name = datasets.recognise(columns)
    if not name:
        return ""
    return (f"; this looks like the published table bayeslaw.datasets.{name}(path) reads into runs (one row per "
            "run, canonical columns): read it with that and pass the frame")


def derivation_rules(k: float | None) -> list[tuple[str, tuple[str, ...], Callable, str]]:
    """How a missing input follows from others: C = k N D (when the law has a k) and C = M D."""
    rules: list[tuple[str, tuple[str, ...], Callable, str]] = []
    if k is not None:
        rules += [("D", ("C", "N"), lambda v: v["C"] / (k * v["N"]), f"C / ({k:g} N)"),
                  ("N", ("C", "D"), lambda v: v["C"] / (k * v["D"]), f"C / ({k:g} D)"),
                  ("C", ("N", "D"), lambda v: k * v["N"] * v["D"], f"{k:g} N D")]
    rules += [("D", ("C", "M"), lambda v: v["C"] / v["M"], "C / M (C = M D)"),
              ("C", ("M", "D"), lambda v: v["M"] * v["D"], "M D"),
              ("epochs", ("D", "U"), lambda v: v["D"] / v["U"], "D / U"),
              ("D", ("epochs", "U"), lambda v: v["epochs"] * v["U"], "epochs U"),
              ("U", ("D", "epochs"), lambda v: v["D"] / v["epochs"], "D / epochs")]
    return rules


def derive_inputs(law: Law, values: Mapping[str, np.ndarray], flops_per_param_token: float | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Numeric inputs completed by the law's compute convention; the dict of what was derived and how."""
    k = flops_per_param_token if flops_per_param_token is not None else law.flops_per_param_token
    out, derived = dict(values), {}
    for col, needs, rule, text in derivation_rules(k):
        if col not in out and all(n in out for n in needs):
            out[col] = rule(out)
            derived[col] = text
    return out, derived


DERIVING = ("N", "D", "C", "M", "U", "epochs", "n_layer", "d_model", "l_seq")


def readable_columns(law: Law) -> tuple[list[str], list[str]]:
    """The canonical names ``law`` reads: its inputs and target, and the columns they may be derived from."""
    wanted = [*law.inputs, law.target]
    return wanted, [c for c in DERIVING if c not in wanted]


def check_column_names(law: Law, columns: Mapping[str, str]) -> None:
    """Refuse a mapping for a canonical name the law does not read (a typo such as 'lss' would be ignored)."""
    wanted, extra = readable_columns(law)
    for canonical, src in columns.items():
        if canonical not in wanted and canonical not in extra:
            raise DataError(f"column mapping {canonical}={src}: '{canonical}' is not a name law '{law.name}' reads; "
                            f"it reads {', '.join(wanted)} (or derives them from {', '.join(extra)})")
        if not isinstance(src, str) or not src.strip():
            raise DataError(f"column mapping {canonical}={src!r}: give the name of a column of the table")


def load_runs(
    source: pd.DataFrame | str | os.PathLike | Runs,
    law: Law | str,
    columns: Mapping[str, str] | None = None,
    flops_per_param_token: float | None = None,
    likelihood: str = "student_t",
    run_column: str | None = None,
) -> Runs:
    """Read ``source`` for ``law``: map columns, derive what the law's convention allows, validate.

    ``columns`` maps canonical names to source columns, e.g. ``{"loss": "val-loss"}``.
    ``run_column`` names the column of run ids when rows are checkpoints of learning curves; by default a
    column named like ``run``, ``run_id`` or ``curve`` is taken (``Runs.run_ids``).
    ``flops_per_param_token`` overrides the law's k in C = k N D. ``likelihood`` (the fit's) sets how many
    noise parameters the table must outnumber with the law's (``bayeslaw.likelihoods``: sigma, and nu for the
    Student-t).
    """
    law = get_law(law)
    if isinstance(source, Runs):
        if source.run_ids is not None and run_column is None:
            source, run_column = source.frame.assign(run_id=source.run_ids), "run_id"
        else:
            source = source.frame
    frame, file_lines = read_table(source)
    run_source = _run_column(frame, run_column)
    columns = dict(columns or {})
    wanted, extra = readable_columns(law)
    check_column_names(law, columns)
    mapped, ambiguous = _map_columns(frame, wanted, columns, extra)
    sources: dict[str, str] = {}
    for name in [*wanted, *extra]:
        if name in mapped and mapped[name] in sources and (name in columns or sources[mapped[name]] in columns):
            raise DataError(f"column '{mapped[name]}' would be read as both {sources[mapped[name]]} and {name}; "
                            "map each canonical name to its own column")
        sources.setdefault(mapped.get(name, ""), name)
    values: dict[str, np.ndarray] = {}

    def have(name: str) -> bool:
        if name not in values and name in ambiguous:
            raise DataError(ambiguous[name])
        if name not in values and name in mapped:
            values[name] = _numeric(frame, mapped[name], name, file_lines, counts=name != law.target)
        return name in values

    derived: dict[str, str] = {}
    k = flops_per_param_token if flops_per_param_token is not None else law.flops_per_param_token
    for col, needs, rule, text in derivation_rules(k):
        if col not in wanted or have(col):
            continue
        if "M" in needs and not have("M") and all(have(c) for c in ("n_layer", "d_model", "l_seq")):
            values["M"] = model_scale(values["n_layer"], values["d_model"], values["l_seq"])
            derived["M"] = "72 n_layer d_model^2 + 12 n_layer d_model l_seq (DeepSeek eq 2)"
        if all(have(n) for n in needs):
            _check_ranges(values, needs, mapped, file_lines)
            with np.errstate(over="ignore", under="ignore"):
                values[col] = rule(values)
            bad = ~np.isfinite(values[col]) | (values[col] <= 0)
            if bad.any():
                sources = " and ".join(f"'{mapped.get(n, n)}' ({n})" for n in needs)
                raise DataError(f"{col} derived as {text} from {sources}: {_rows(bad, file_lines, ('give', 'gives'))} "
                                f"a {col} that is not a finite number > 0; check the units of those columns")
            derived[col] = text

    missing = [c for c in wanted if not have(c)]
    if missing:
        hints = "; ".join(f"{c} ({UNITS.get(c, 'as the law states')}) from columns like "
                          f"{', '.join(repr(a) for a in ALIASES.get(c, (c,))[:4])}" for c in missing)
        raise DataError(f"missing column(s) for law '{law.name}': {', '.join(missing)}; "
                        f"the table has {', '.join(map(str, frame.columns))}. Expected {hints}. "
                        "Map other names with columns={...} (CLI: --column NAME=COLUMN)" + _reader_hint(frame.columns))
    _check_ranges(values, wanted, mapped, file_lines)
    n_params = n_parameters(law, likelihood)  # the law's and the likelihood's noise parameters (sigma[, nu])
    if len(frame) < n_params:
        raise DataError(f"{len(frame)} runs are fewer than the {n_params} parameters of law '{law.name}' "
                        f"({len(law.params)} law parameters plus noise); give at least {n_params} runs")
    out = pd.DataFrame({c: values[c] for c in wanted})
    out.index.name = "run"
    from bayeslaw.datasets import recognise

    run_ids = None if run_source is None else frame[run_source].to_numpy(dtype=object)
    no_id = pd.isna(run_ids) if run_ids is not None else None
    if no_id is not None and no_id.any():
        raise DataError(f"column '{run_source}' (run id): {_rows(no_id, file_lines)} missing; every checkpoint needs "
                        "the id of its run")
    return Runs(out, law, {c: mapped[c] for c in wanted if c in mapped}, derived, recognise(frame.columns) or "",
                run_ids, run_source or "")


def _run_column(frame: pd.DataFrame, run_column: str | None) -> str | None:
    """The column of run ids: ``run_column`` (which must exist), else one named like RUN_ALIASES, else None."""
    if run_column is not None:
        if run_column not in frame.columns:
            raise DataError(f"run column '{run_column}' is not in the table; it has "
                            f"{', '.join(map(str, frame.columns))}")
        return run_column
    found = [c for c in frame.columns if _normalise(c) in RUN_ALIASES]
    if len(found) > 1:
        raise DataError(f"columns {', '.join(repr(c) for c in found)} could each be the run id; name one with "
                        "run_column=... (CLI --run-column)")
    return found[0] if found else None


def _check_ranges(values: Mapping[str, np.ndarray], names, mapped: Mapping[str, str],
                  file_lines: np.ndarray | None) -> None:
    """Each named input within its valid range: > 0, or its own rule (sparsity in [0, 1), experts >= 1)."""
    for name in names:
        src = mapped.get(name, name)
        if name in RANGE_RULES:
            check, rule = RANGE_RULES[name]
            bad = ~check(values[name])
            if bad.any():
                raise DataError(f"column '{src}' ({name}): {_rows(bad, file_lines)} out of range; {name} {rule}")
            continue
        bad = ~(values[name] > 0)
        if bad.any():
            raise DataError(f"column '{src}' ({name}): {_rows(bad, file_lines)} zero or negative; "
                            f"{name} must be > 0 (the law takes logs and powers of it)")
