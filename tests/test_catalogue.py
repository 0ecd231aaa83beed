"""The models/ catalogue: every entry validated (schema, law, priors build a model, test vectors),
draws match the published uncertainty, malformed entries are refused, ``plan --model``, the wheel."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayeslaw.catalogue import (
    CatalogueError,
    Entry,
    catalogue_dir,
    entry_posterior,
    list_entries,
    load_entry,
)
from bayeslaw.cli import EXIT_ERROR, EXIT_USAGE, app
from bayeslaw.data import load_runs
from bayeslaw.laws import LAWS
from bayeslaw.laws.base import sample_inputs
from bayeslaw.model import build_model, sampling_coordinates
from bayeslaw.plan import plan
from bayeslaw.posterior import from_constants

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = list_entries()
REQUIRED = {  # the brief of issue 5: these published fits must be in the catalogue
    "chinchilla-hoffmann2022-printed", "chinchilla-hoffmann2022-tex", "chinchilla-besiroglu2024", "kaplan2020-N",
    "kaplan2020-ND", "deepseek2024-M_opt", "muennighoff2023", "quokka-ni2025", "quokka-dc-ni2025",
    "frantar2023-t5", "hossain2025",
}
VECTORS = [(name, i) for name in ENTRIES for i in range(len(load_entry(name).test_vectors))]
runner = CliRunner()


def test_catalogue_is_read_from_the_checkout_and_holds_the_published_fits():
    assert catalogue_dir() == ROOT / "models"
    assert REQUIRED <= set(ENTRIES)
    assert len(ENTRIES) == len(list((ROOT / "models").glob("*.toml")))


@pytest.mark.parametrize("name", ENTRIES)
def test_every_entry_is_valid_and_its_priors_build_a_model(name):
    entry = load_entry(name)
    assert isinstance(entry, Entry) and entry.name == name and entry.law.name in LAWS
    assert entry.title and entry.source["citation"]
    assert set(entry.conventions) >= {*entry.law.inputs, entry.law.target}
    assert set(entry.priors) >= set(entry.law.params) | {"sigma"}
    if entry.constants is not None:
        assert set(entry.constants) == set(entry.law.published)
        assert entry.uncertainty is not None and entry.uncertainty.label and entry.uncertainty.note
        assert entry.test_vectors, "a published fit must reproduce at least one published value"
        if entry.uncertainty.kind == "none":
            assert "no uncertainty published" in entry.uncertainty.label
    # the entry's priors and likelihood build the PyMC model on a few runs drawn from the law
    truth = entry.constants or next(iter(entry.law.presets.values())).values
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(sample_inputs(entry.law, 24, rng))
    frame[entry.law.target] = entry.law.evaluate(truth, frame) * np.exp(0.01 * rng.standard_normal(24))
    runs = load_runs(frame, entry.law)
    model = build_model(runs, entry.priors, entry.likelihood)
    coordinates = sampling_coordinates(entry.law, entry.priors)  # NUTS samples these where the law has them
    sampled = coordinates.names if coordinates is not None else entry.law.params
    assert {*sampled, "sigma"} <= {v.name for v in model.free_RVs}
    assert np.isfinite(model.compile_logp()(model.initial_point()))


@pytest.mark.parametrize(("name", "index"), VECTORS)
def test_published_constants_reproduce_the_test_vectors(name, index):
    entry = load_entry(name)
    vector = entry.test_vectors[index]
    assert vector.evaluate(entry.law, entry.constants) == pytest.approx(vector.expected, rel=vector.rtol)


def test_catalogue_constants_agree_with_the_law_presets():
    """The same published fit, read from the catalogue and from the law's presets, is the same."""
    pairs = {"chinchilla-hoffmann2022-printed": ("chinchilla", "hoffmann2022"),
             "chinchilla-hoffmann2022-tex": ("chinchilla", "hoffmann2022-tex"),
             "chinchilla-besiroglu2024": ("chinchilla", "besiroglu2024"), "kaplan2020-ND": ("kaplan-ND", "kaplan2020"),
             "muennighoff2023": ("muennighoff", "muennighoff2023"), "quokka-ni2025": ("quokka", "ni2025"),
             "quokka-dc-ni2025": ("quokka-dc", "ni2025"), "frantar2023-t5": ("frantar", "frantar2023-t5"),
             "hossain2025": ("hossain", "hossain2025"), "deepseek2024-lr_opt": ("deepseek-lr_opt", "deepseek2024")}
    for name, (law, preset) in pairs.items():
        got = load_entry(name).constants
        want = LAWS[law].presets[preset].values
        assert got == pytest.approx(dict(want), rel=1e-9), name


@pytest.mark.parametrize("name", [n for n in ENTRIES if load_entry(n).constants is not None])
def test_every_published_fit_gives_a_posterior(name):
    entry = load_entry(name)
    post = entry_posterior(name, draws=500, seed=1)
    assert post.law is entry.law and name in post.source and entry.uncertainty.label in post.source
    expected = 1 if entry.uncertainty.kind == "none" else 500
    assert post.n_draws == expected
    for param, value in entry.constants.items():
        draws = post.draws[param].values
        assert np.all(np.isfinite(draws)) and np.all(np.sign(draws) == np.sign(value)), param
        if param not in entry.uncertainty.params:
            assert np.all(draws == value), f"{param} has no published uncertainty and stays at its estimate"


def test_besiroglu_draws_have_the_published_bootstrap_mean_and_sd():
    entry = load_entry("chinchilla-besiroglu2024")
    n = 20_000
    post = entry_posterior("chinchilla-besiroglu2024", draws=n, seed=3)
    for param, spec in entry.uncertainty.params.items():
        values = post.draws[param].values.ravel()
        values = np.log(values) if spec.scale == "log" else values
        centre = math.log(entry.constants[param]) if spec.scale == "log" else entry.constants[param]
        assert values.mean() == pytest.approx(centre, abs=4 * spec.sd / math.sqrt(n)), param
        assert values.std() == pytest.approx(spec.sd, rel=4 / math.sqrt(2 * n)), param
    # the published linear SEs of the estimates (A 124.5, E 0.0257) follow from the log-scale ones
    assert post.draws["E"].std() == pytest.approx(0.02566, rel=0.05)
    assert post.draws["A"].std() == pytest.approx(124.52, rel=0.1)
    # and the published SE of a = beta / (alpha + beta), 0.020, is reproduced by the draws
    derived = entry.law.published_with_derived(post.published_draws())
    assert float(derived["a"].std()) == pytest.approx(0.020, rel=0.15)
    assert entry_posterior("chinchilla-besiroglu2024", draws=50, seed=7).draws.equals(
        entry_posterior("chinchilla-besiroglu2024", draws=50, seed=7).draws), "seeded draws are reproducible"


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    return path


HEADER = """
name = "{name}"
law = "chinchilla"
title = "test entry"
priors = "law defaults"
[source]
citation = "nobody 2025"
[conventions]
N = "parameters"
D = "tokens"
loss = "nats"
"""
CONSTANTS = """
[constants]
E = 1.8
A = { log = 6.0 }
B = 400.0
alpha = 0.3
beta = 0.3
[[test_vectors]]
what = "a"
expected = 0.5
rtol = 1e-12
"""


def test_covariance_and_interval_uncertainty_draws(tmp_path):
    cov = [[0.04, 0.002], [0.002, 0.0004]]  # log A and alpha, correlation 0.5
    path = _write(tmp_path, "cov", HEADER.format(name="cov") + CONSTANTS + f"""
[uncertainty]
kind = "covariance"
label = "a covariance"
note = "made up"
matrix = {cov}
[uncertainty.params]
A = {{ scale = "log" }}
alpha = {{}}
""")
    n = 20_000
    post = load_entry(path).posterior(draws=n, seed=0)
    sample = np.stack([np.log(post.draws["A"].values.ravel()), post.draws["alpha"].values.ravel()])
    np.testing.assert_allclose(np.cov(sample), cov, rtol=0.05, atol=1e-6)
    assert sample[0].mean() == pytest.approx(6.0, abs=4 * 0.2 / math.sqrt(n))

    path = _write(tmp_path, "interval", HEADER.format(name="interval") + CONSTANTS + """
[uncertainty]
kind = "independent"
label = "intervals"
note = "made up"
[uncertainty.params]
E = { interval = [1.7, 1.9], level = 0.9 }
beta = { sd = 0.25 }
""")
    post = load_entry(path).posterior(draws=n, seed=0)
    assert post.draws["E"].std() == pytest.approx(0.1 / 1.6449, rel=0.03)
    beta = post.draws["beta"].values
    assert beta.min() > 0, "linear-scale draws that change sign are redrawn (truncated at 0)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HEADER.replace('law = "chinchilla"', 'law = "nope"'), "field 'law' unknown law 'nope'"),
        (HEADER.replace('title = "test entry"\n', ""), "field 'title' is required"),
        ("colour = 3\n" + HEADER, "field 'colour' is not part of the schema"),
        (HEADER + "colour = 3\n", "field 'conventions.colour' must be a non-empty string, got 3"),
        (HEADER.replace('name = "{name}"', 'name = "other"'), "field 'name' must equal the file name"),
        (HEADER.replace('loss = "nats"\n', ""), "field 'conventions' must say what each input and the target mean; "
                                                 "missing loss"),
        (HEADER.replace('priors = "law defaults"', 'priors = { alpha = "Normal(mu=0.3, sigma=1)" }'),
         "field 'priors' prior for 'alpha'"),
        (HEADER.replace('priors = "law defaults"', 'priors = { gamma = "Normal(mu=0.3, sigma=1)" }'),
         "field 'priors' unknown parameter 'gamma'"),
        (HEADER.replace('priors = "law defaults"', 'likelihood = "huber"'), "field 'likelihood' must be one of"),
        (HEADER + CONSTANTS.replace("beta = 0.3\n", "", 1), "field 'constants' must give exactly"),
        (HEADER + CONSTANTS.replace("E = 1.8", 'E = "1.8"'), "field 'constants.E' must be a finite number"),
        (HEADER + CONSTANTS, "field 'uncertainty' is required and must be a table"),
        (HEADER + CONSTANTS + '[uncertainty]\nkind = "bootstrap"\nlabel = "x"\nnote = "y"\n',
         "field 'uncertainty.kind' must be one of none, independent, covariance"),
        (HEADER + CONSTANTS + '[uncertainty]\nkind = "independent"\nlabel = "x"\nnote = "y"\n'
         '[uncertainty.params]\nE = { sd = -1 }\n', "field 'uncertainty.params.E.sd' must be > 0"),
        (HEADER + CONSTANTS + '[uncertainty]\nkind = "independent"\nlabel = "x"\nnote = "y"\n'
         '[uncertainty.params]\nE = { sd = 0.1, interval = [1, 2], level = 0.9 }\n',
         "field 'uncertainty.params.E' needs exactly one of 'sd' and 'interval'"),
        (HEADER + CONSTANTS + '[uncertainty]\nkind = "independent"\nlabel = "x"\nnote = "y"\n'
         '[uncertainty.params]\nZ = { sd = 0.1 }\n', "field 'uncertainty.params.Z' is not a constant"),
        (HEADER + CONSTANTS + '[uncertainty]\nkind = "covariance"\nlabel = "x"\nnote = "y"\n'
         'matrix = [[1, 2], [2, 1]]\n[uncertainty.params]\nE = {}\nalpha = {}\n',
         "field 'uncertainty.matrix' must be positive definite"),
        (HEADER + CONSTANTS.replace("expected = 0.5", "expected = 0.6") + '[uncertainty]\nkind = "none"\n'
         'label = "no uncertainty published: one draw"\nnote = "y"\n', None),  # loads; the vector check fails
        (HEADER + CONSTANTS.replace('what = "a"', 'what = "zeta"') + '[uncertainty]\nkind = "none"\nlabel = "x"\n'
         'note = "y"\n', "field 'test_vectors[0].what' must name a constant or derived quantity"),
        ("name = [", "not valid TOML"),
    ],
)
def test_malformed_entries_name_the_file_field_and_rule(tmp_path, body, message):
    path = _write(tmp_path, "bad", body.replace("{name}", "bad").replace("{{", "{").replace("}}", "}"))
    if message is None:
        entry = load_entry(path)
        vector = entry.test_vectors[0]
        assert vector.evaluate(entry.law, entry.constants) != pytest.approx(vector.expected, rel=vector.rtol)
        return
    with pytest.raises(CatalogueError) as err:
        load_entry(path)
    assert str(err.value).startswith("bad.toml: ") and message in str(err.value), str(err.value)


def test_unknown_entry_lists_the_catalogue_and_prior_only_entries_refuse_a_posterior():
    with pytest.raises(CatalogueError, match=r"unknown model 'chinchila'; catalogue entries: .*chinchilla-besirog"):
        load_entry("chinchila")
    with pytest.raises(CatalogueError, match="publishes no constants"):
        entry_posterior("chinchilla-default")


def test_cli_plan_from_a_published_fit():
    """`bayeslaw plan --model chinchilla-besiroglu2024 --budget ...`: medians near the published allocation."""
    result = runner.invoke(app, ["plan", "--model", "chinchilla-besiroglu2024", "--budget", "5.76e23,1e24",
                                 "--json"])
    assert result.exit_code == 0, result.output
    import json

    out = json.loads(result.stdout)
    assert "published bootstrap SEs, Besiroglu et al. 2024" in out["uncertainty"]
    assert "arXiv:2404.10102" in out["model"]
    rows = {row["budget"]: row for row in out["plan"]}
    assert rows[5.76e23]["n_opt"]["median"] == pytest.approx(7.236e10, rel=0.05)  # laws.md section 3
    assert rows[5.76e23]["d_opt"]["median"] == pytest.approx(1.327e12, rel=0.05)
    point = plan(from_constants("chinchilla", "besiroglu2024"), 1e24).draws
    assert rows[1e24]["n_opt"]["median"] == pytest.approx(point["N_opt"].item(), rel=0.05)
    published = {row["budget"]: row for row in out["at_published_estimates"]}
    assert published[5.76e23]["n_opt"] == pytest.approx(7.236e10, rel=1e-3)

    text = runner.invoke(app, ["plan", "--model", "chinchilla-hoffmann2022-tex", "--budget", "5.76e23"])
    assert text.exit_code == 0, text.output
    assert "no uncertainty published: one draw" in text.stdout and "4.036e+10" in text.stdout


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["plan", "--budget", "1e24"], "give either a saved fit (PATH) or --model NAME", EXIT_USAGE),
        (["plan", "fit.nc", "--model", "kaplan2020-N", "--budget", "1e24"], "not both", EXIT_USAGE),
        (["plan", "--model", "nope", "--budget", "1e24"], "unknown model 'nope'; catalogue entries:", EXIT_ERROR),
        (["plan", "--model", "chinchilla-default", "--budget", "1e24"], "publishes no constants", EXIT_ERROR),
        (["plan", "--model", "kaplan2020-N", "--budget", "1e24"], "needs a law in N and D", EXIT_ERROR),
    ],
)
def test_cli_plan_model_errors(args, message, code):
    result = runner.invoke(app, args)
    assert result.exit_code == code
    assert message in result.output


def test_cli_lists_the_models():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for name in ENTRIES:
        assert name in result.stdout
    assert "arXiv:2404.10102" in result.stdout


@pytest.mark.slow
def test_catalogue_ships_in_the_wheel(tmp_path):
    """Build the wheel, install it (no deps) in a fresh venv that borrows this venv's site-packages, and load
    every entry and its posterior from the installed package, not from the checkout."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(wheels)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("bayeslaw-*.whl"))
    shipped = zipfile.ZipFile(wheel).namelist()
    assert "bayeslaw/catalogue/schema.py" in shipped and "bayeslaw/models/chinchilla-besiroglu2024.toml" in shipped
    assert not [name for name in shipped if name.startswith(("tools/", "tests/"))]  # repository scripts stay out
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(purelib), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    # the dependencies come from this venv, after the new venv's own site-packages: its bayeslaw wins
    # (an editable bayeslaw of this venv, a .pth or finder hook, is not imported: only plain paths are added)
    ours = sysconfig.get_paths()["purelib"]
    (purelib / "zz_borrowed_dependencies.pth").write_text(ours + "\n")
    script = textwrap.dedent(f"""
        import pathlib, bayeslaw
        from bayeslaw.catalogue import catalogue_dir, entry_posterior, list_entries, load_entry
        assert pathlib.Path(bayeslaw.__file__).resolve().is_relative_to(pathlib.Path({str(venv)!r}).resolve()), \\
            bayeslaw.__file__
        assert catalogue_dir() == pathlib.Path(bayeslaw.__file__).resolve().parent / "models", catalogue_dir()
        names = list_entries()
        assert names == {ENTRIES!r}, names
        for name in names:
            entry = load_entry(name)
            if entry.constants is not None:
                entry_posterior(name, draws=100)
        print("ok", len(names))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"ok {len(ENTRIES)}"
    shutil.rmtree(venv, ignore_errors=True)
