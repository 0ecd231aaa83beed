"""The registry of scaling laws. ``get_law(name)`` finds one (case-insensitive); ``LAWS`` lists all."""

from __future__ import annotations

from bayeslaw.errors import LawError
from bayeslaw.laws.base import Law, Param, Preset, pivots_of
from bayeslaw.laws.bnsl import BNSL_LAWS
from bayeslaw.laws.chinchilla import CHINCHILLA, QUOKKA, chinchilla_optimum
from bayeslaw.laws.data_constrained import DATA_CONSTRAINED_LAWS
from bayeslaw.laws.deepseek import DEEPSEEK_LAWS, model_scale
from bayeslaw.laws.kaplan import KAPLAN_LAWS
from bayeslaw.laws.moe import MOE_LAWS
from bayeslaw.laws.power import POWER_LAWS
from bayeslaw.laws.sparse import SPARSE_LAWS

LAWS: dict[str, Law] = {law.name: law for law in [
    *POWER_LAWS, *KAPLAN_LAWS, CHINCHILLA, QUOKKA, *DEEPSEEK_LAWS,
    *DATA_CONSTRAINED_LAWS, *SPARSE_LAWS, *MOE_LAWS, *BNSL_LAWS,
]}
ALIASES = {"power": "power-C", "hoffmann": "chinchilla"}


def get_law(name: str | Law) -> Law:
    """The law called ``name`` (case-insensitive), or a LawError listing the known names."""
    if isinstance(name, Law):
        return name
    wanted = ALIASES.get(name.lower(), name).lower()
    for law_name, law in LAWS.items():
        if law_name.lower() == wanted:
            return law
    raise LawError(f"unknown law '{name}'; known laws: {', '.join(LAWS)}")


def register(law: Law) -> Law:
    """Add a law to the registry (its name must be new)."""
    if law.name.lower() in {n.lower() for n in LAWS}:
        raise LawError(f"a law named '{law.name}' is already registered")
    LAWS[law.name] = law
    return law


__all__ = ["LAWS", "Law", "Param", "Preset", "chinchilla_optimum", "get_law", "model_scale",
           "pivots_of", "register"]
