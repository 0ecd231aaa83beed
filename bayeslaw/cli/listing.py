"""`bayeslaw laws` and `bayeslaw models`: what can be fitted and what was published."""

from __future__ import annotations

import typer

from bayeslaw.cli._app import _command
from bayeslaw.cli._common import JsonOption, _print_json, _run


@_command("laws")
def laws_command(as_json: JsonOption = False) -> None:
    """List the laws with their formulas, inputs and sources."""
    from bayeslaw.laws import LAWS

    if as_json:
        from bayeslaw.jsondata import document

        _print_json(document("laws", {"laws": [
            {"law": name, "formula": law.formula, "inputs": list(law.inputs), "target": law.target,
             "parameters": list(law.published), "source": law.source} for name, law in LAWS.items()]},
            units=_units()))
        return
    width = max(len(n) for n in LAWS)
    for name, law in LAWS.items():
        typer.echo(f"{name:<{width}}  {law.formula}")
        typer.echo(f"{'':<{width}}  inputs {', '.join(law.inputs)} -> {law.target}; {law.source}")


@_command("models")
def models_command(as_json: JsonOption = False) -> None:
    """List the catalogue of named law specifications and published fits (models/)."""
    from bayeslaw.catalogue import list_entries, load_entry

    entries = _run(lambda: [load_entry(n) for n in list_entries()])
    if as_json:
        from bayeslaw.jsondata import document

        _print_json(document("models", {"models": [
            {"model": e.name, "law": e.law.name, "uncertainty": e.uncertainty.kind if e.uncertainty else None,
             "citation": e.citation} for e in entries]}, units=_units()))
        return
    width = max(len(e.name) for e in entries)
    for entry in entries:
        kind = entry.uncertainty.kind if entry.uncertainty else "priors only"
        typer.echo(f"{entry.name:<{width}}  law {entry.law.name}; uncertainty: {kind}")
        typer.echo(f"{'':<{width}}  {entry.citation}")


def _units() -> dict[str, str]:
    from bayeslaw.jsondata import UNITS, key

    return {key(k): v for k, v in UNITS.items()}
