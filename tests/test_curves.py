"""Learning curves (bayeslaw.curves): the checkpoints' grouping, the schedule term and the exact density."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayeslaw.curves import _whitened, build_curves, curve_logp_numpy, decay_left, independent_logp_numpy
from bayeslaw.data import load_runs
from bayeslaw.errors import BayeslawError, DataError


def _table(seed: int = 0) -> pd.DataFrame:
    """Three runs of a Chinchilla-like law, 4-7 checkpoints each, rows shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for run, (n, end, k) in enumerate([(1e8, 2e9, 5), (3e8, 6e9, 7), (1e9, 2e10, 4)]):
        for d in np.geomspace(end / 20, end, k):
            loss = 1.8 + 400 * n**-0.34 + 400 * d**-0.28 + 0.01 * rng.standard_normal()
            rows.append({"run_id": f"r{run}", "N": n, "D": d, "loss": loss})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_decay_left_is_the_schedule_still_to_come():
    p = np.array([0.0, 0.5, 1.0, 1.2])
    assert decay_left(p, "cosine") == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert decay_left(p, "linear") == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert decay_left(p, "none") == pytest.approx([0.0] * 4)
    with pytest.raises(DataError, match="unknown learning-rate schedule 'wsd'"):
        decay_left(p, "wsd")


def test_run_column_is_recognised_and_groups_checkpoints():
    runs = load_runs(_table(), "chinchilla")
    assert runs.run_column == "run_id" and runs.is_curves
    curves = build_curves(runs, runs.run_ids, min_progress=0.1)
    assert curves.n_runs == 3 and list(curves.ids) == ["r0", "r1", "r2"]
    # rows sorted by run, then D; each run's last row is its final checkpoint
    for i in range(3):
        d = curves.rows.frame["D"].to_numpy()[curves.run == i]
        assert np.all(np.diff(d) > 0)
        assert curves.finals.frame["D"].iloc[i] == d[-1]
    # checkpoints before 10% of a run's tokens are dropped (the first at 5%, the second at 8% or 14%)
    table = _table()
    early = (table["D"] / table.groupby("run_id")["D"].transform("max") < 0.1).sum()
    assert early == 4 and curves.dropped == 4 and len(curves.rows) == 16 - 4
    last = np.r_[curves.first[1:], True]
    assert curves.decay[~last].min() > 0 and np.all(curves.decay[last] == 0)
    assert np.all(curves.log_step[curves.first] == 0) and np.all(curves.log_step[~curves.first] > 0)


def test_a_run_stopped_before_its_schedule_ended_keeps_decay_to_come():
    runs = load_runs(_table(), "chinchilla")
    curves = build_curves(runs, runs.run_ids, min_progress=0.0, schedule_end={"r1": 12e9})  # r1 ends at 6e9
    last = np.r_[curves.first[1:], True]
    assert curves.decay[last][1] == pytest.approx(decay_left(np.array([0.5]), "cosine")[0])
    assert curves.decay[last][0] == 0 and curves.decay[last][2] == 0


def test_thinning_keeps_checkpoints_spread_in_log_tokens():
    rows = [{"run": "a", "N": 1e8, "D": d, "loss": 3.0 + 1e-12 * d} for d in np.linspace(1e8, 1e10, 400)]
    runs = load_runs(pd.DataFrame(rows), "chinchilla")
    curves = build_curves(runs, runs.run_ids, min_progress=0.0, max_checkpoints=20)
    log_d = np.log(curves.rows.frame["D"].to_numpy())
    assert 15 <= len(log_d) <= 20 and log_d[-1] == np.log(1e10) and log_d[0] == np.log(1e8)
    assert np.diff(log_d).max() < 2.5 * (log_d[-1] - log_d[0]) / 19  # about even in log D, not in D
    with pytest.raises(DataError, match="max_checkpoints must be at least 2"):
        build_curves(runs, runs.run_ids, max_checkpoints=1)


def test_bad_curves_are_named():
    table = _table()
    twice = pd.concat([table, table.iloc[[0]]], ignore_index=True)
    runs = load_runs(twice, "chinchilla")
    with pytest.raises(DataError, match=r"run 'r\d': rows .* have the same D"):
        build_curves(runs, runs.run_ids)
    moved = table.copy()
    moved.loc[moved.index[moved["run_id"] == "r1"][0], "N"] = 5e8
    runs = load_runs(moved, "chinchilla")
    with pytest.raises(DataError, match="run 'r1': column N changes between its checkpoints"):
        build_curves(runs, runs.run_ids)
    with pytest.raises(DataError, match="run column 'seed' is not in the table"):
        load_runs(table, "chinchilla", run_column="seed")
    gap = table.astype({"run_id": object})
    gap.loc[3, "run_id"] = None
    with pytest.raises(DataError, match=r"column 'run_id' \(run id\): row 3 is missing"):
        load_runs(gap, "chinchilla")
    with pytest.raises(DataError, match="min_progress must lie in"):
        build_curves(load_runs(table, "chinchilla"), table["run_id"], min_progress=1.0)


def _dense_logp(residual, log_d, scale, tau, ell):
    """The same density by brute force: a multivariate normal with the full covariance."""
    cov = np.outer(scale, scale) * np.exp(-np.abs(log_d[:, None] - log_d[None, :]) / ell) + tau**2
    return stats.multivariate_normal(mean=np.zeros(len(residual)), cov=cov).logpdf(residual)


def test_density_matches_the_full_covariance():
    runs = load_runs(_table(), "chinchilla")
    curves = build_curves(runs, runs.run_ids, min_progress=0.0)
    rng = np.random.default_rng(1)
    residual = 0.02 * rng.standard_normal(len(curves.rows))
    log_d = np.log(curves.rows.frame["D"].to_numpy())
    for sigma, wider, tau, ell in [(0.01, 0.0, 0.03, 0.5), (0.05, 0.02, 0.001, 3.0), (0.02, 0.1, 0.2, 0.05)]:
        got = curve_logp_numpy(residual, curves, {"sigma": sigma, "schedule_sd": wider, "run_sd": tau,
                                                  "corr_length": ell})
        scale = sigma + wider * curves.decay
        want = [_dense_logp(residual[curves.run == i], log_d[curves.run == i], scale[curves.run == i], tau, ell)
                for i in range(3)]
        assert got == pytest.approx(want, rel=1e-9)
        factor = np.array([0.5, 1.0, 3.0])  # each run's own scale
        got = curve_logp_numpy(residual, curves, {"sigma": sigma, "schedule_sd": wider, "run_sd": tau,
                                                  "corr_length": ell, "run_scale": factor})
        scale = sigma * factor[curves.run] + wider * curves.decay
        want = [_dense_logp(residual[curves.run == i], log_d[curves.run == i], scale[curves.run == i], tau, ell)
                for i in range(3)]
        assert got == pytest.approx(want, rel=1e-9)
    independent = independent_logp_numpy(residual, curves, {"sigma": 0.02})
    want = [stats.norm.logpdf(residual[curves.run == i], scale=0.02).sum() for i in range(3)]
    assert independent == pytest.approx(want, rel=1e-12)


def test_a_run_that_is_all_offset_has_no_cancellation():
    """Residuals equal to the run's offset, tiny checkpoint noise, a wide offset prior: the quadratic form is
    b^2 u.u / (1 + tau^2 u.u) (Sherman-Morrison on r = b 1). Written as w.w - tau^2 (u.w)^2 / (1 + tau^2 u.u) it
    cancelled here: 32 nats too high on one run at sigma 1e-9, the kind of spurious peak NUTS fell into."""
    runs = load_runs(_table(), "chinchilla")
    curves = build_curves(runs, runs.run_ids, min_progress=0.0)
    b, tau, ell = 0.3, 1.0, 0.5
    for sigma in (1e-3, 1e-6, 1e-9):
        residual = np.full(len(curves.rows), b)
        got = curve_logp_numpy(residual, curves, {"sigma": sigma, "schedule_sd": 0.0, "run_sd": tau,
                                                  "corr_length": ell})
        scale = np.full(len(residual), sigma)
        _, u, log_v = _whitened(residual, scale, curves.log_step, curves.first, ell, np)
        uu, logv = np.add.reduceat(u * u, curves.starts), np.add.reduceat(log_v, curves.starts)
        n = np.diff(np.r_[curves.starts, len(curves.run)])
        want = -0.5 * (n * np.log(2 * np.pi) + logv + np.log1p(tau**2 * uu) + b**2 * uu / (1 + tau**2 * uu))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-9), sigma


def test_model_density_is_the_numpy_density():
    """The PyMC model's curve term, evaluated at a point, equals the numpy density summed over runs."""
    from bayeslaw.fixed import Fixing
    from bayeslaw.model import build_model, data_pivots, model_priors

    runs = load_runs(_table(), "chinchilla")
    curves = build_curves(runs, runs.run_ids)
    priors = model_priors(runs.law, "curve")
    model = build_model(curves.finals, priors, "curve", reparameterise=False, fixing=Fixing(), curves=curves)
    point = {"E": 1.8, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.28, "sigma": 0.02, "schedule_sd": 0.04,
             "run_sd": 0.01, "corr_length": 0.7, "schedule_gap": 0.03, "run_scale_sd": 0.5,
             "run_scale_z": np.array([0.3, -1.2, 0.1])}
    point = point | runs.law.from_published(point, data_pivots(curves.finals))
    values = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        values[value.name] = point[rv.name] if transform is None else transform.forward(
            np.asarray(point[rv.name]), *rv.owner.inputs).eval()
    potential = model.replace_rvs_by_values([next(p for p in model.potentials if p.name == "curve_log_density")])
    got = float(model.compile_fn(potential[0], inputs=model.value_vars)(values))
    mu = np.log(runs.law.function(point, curves.rows.inputs, np))
    residual = np.log(curves.rows.target) - mu - point["schedule_gap"] * curves.decay
    want = curve_logp_numpy(residual, curves, point | {"run_scale": np.exp(0.5 * point["run_scale_z"])}).sum()
    assert got == pytest.approx(want, rel=1e-9)


def test_every_data_input_of_the_compiled_density_gets_its_own_value():
    """The backends find each data input by name: the run index once shared its name with the run dimension, so
    the dimension's length was given the index array (harmless in the C backend, fatal in JAX). Now the curve
    model's inputs are distinct, the length is the number of runs, and a clash is refused."""
    import pymc as pm

    from bayeslaw.fixed import Fixing
    from bayeslaw.model import build_model, model_priors
    from bayeslaw.sampling import data_values, flat_graph

    runs = load_runs(_table(), "chinchilla")
    curves = build_curves(runs, runs.run_ids)
    model = build_model(curves.finals, model_priors(runs.law, "curve"), "curve", fixing=Fixing(), curves=curves)
    graph = flat_graph(model)
    values = dict(zip(graph.data_names, data_values(model, graph.data_names), strict=True))
    assert len(values) == len(graph.data_names) and int(values["curve_run"]) == curves.n_runs == 3
    with pm.Model(coords={"run": [0, 1], "row": [0, 1, 2]}) as clashing:
        index = pm.Data("run", np.array([0, 1, 1]), dims="row")  # a data container named like a dimension
        w = pm.Normal("w", dims="run")
        pm.Normal("z", mu=w[index], observed=np.zeros(3), dims="row")
    with pytest.raises(ValueError, match="share the names run"):
        flat_graph(clashing)


def test_new_run_noise_integrates_the_run_scale():
    """The density of a new run's final checkpoint is the scale mixture; draws follow it."""
    from bayeslaw.likelihoods import get_likelihood

    family = get_likelihood("curve")
    noise = {"sigma": 0.01, "run_scale_sd": 0.8, "run_sd": 0.005}
    x = np.linspace(-2.0, 2.0, 40001)
    density = np.exp(family.logpdf(x, noise))
    assert density.sum() * (x[1] - x[0]) == pytest.approx(1.0, abs=1e-4)
    draws = family.draw(np.random.default_rng(0), noise, (200_000,))
    for q in (0.05, 0.25):
        mass = density[x <= np.quantile(draws, q)].sum() * (x[1] - x[0])
        assert mass == pytest.approx(q, abs=0.01)
    assert family.tail(np.array([0.0]), noise)[0] == pytest.approx(1.0)


def test_curve_likelihood_needs_curves():
    from bayeslaw.model import build_model, model_priors

    runs = load_runs(_table().drop(columns="run_id"), "chinchilla")
    with pytest.raises(BayeslawError, match="likelihood 'curve' is for learning curves"):
        build_model(runs, model_priors(runs.law, "curve"), "curve")


@pytest.fixture(scope="module")
def synthetic_curve_fit():
    """A curve fit to checkpoints drawn from the curve model at Chinchilla's published constants."""
    import bayeslaw as bl
    from bayeslaw.synthetic import learning_curves

    table = learning_curves("chinchilla", sizes=4, multiples=(1.0, 4.0), checkpoints=40, seed=3)
    return table, bl.fit("chinchilla", table, chains=4, draws=400, seed=1, progress=False)


@pytest.mark.slow
def test_curve_fit_recovers_the_law_and_the_noise(synthetic_curve_fit):
    table, result = synthetic_curve_fit
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # hoffmann2022, the ladder's preset
    assert result.likelihood == "curve" and result.converged
    early = 8 * int((np.geomspace(0.02, 1.0, 40) < 0.1).sum())
    assert result.info["curves"] == {"runs": 8, "checkpoints": len(table) - early, "given": len(table),
                                     "dropped_early": early, "schedule": "cosine", "min_progress": 0.1,
                                     "max_checkpoints": 50}
    summary = result.summary(hdi_prob=0.95)
    for name in ("E", "alpha", "beta", "schedule_gap"):
        value = {"schedule_gap": 0.04}.get(name, truth.get(name))
        assert summary.loc[name, "hdi_2.5%"] <= value <= summary.loc[name, "hdi_97.5%"], (name, summary.loc[name])
    # the fit's runs are the final checkpoints; the pointwise log-likelihood is one value per run (its curve)
    finals = table.loc[table.groupby("run")["D"].idxmax()].sort_values("run")
    assert len(result.runs) == 8 and result.runs.frame["D"].to_numpy() == pytest.approx(finals["D"].to_numpy())
    assert result.idata.log_likelihood["log_loss"].sizes["run"] == 8


@pytest.mark.slow
def test_curve_fit_saves_loads_and_predicts_final_losses(synthetic_curve_fit, tmp_path):
    import bayeslaw as bl

    _, result = synthetic_curve_fit
    path = result.save(tmp_path / "curves.nc")
    loaded = bl.load(path)
    assert loaded.likelihood == "curve" and loaded.info["curves"] == result.info["curves"]
    assert float(loaded.posterior["corr_length"].median()) == float(result.posterior["corr_length"].median())
    # a new run's final loss: the law at its (N, D) with the run noise N(0, sigma^2 + run_sd^2)
    from bayeslaw.predict import predict

    pred = predict(loaded, N=[2e9], D=[4e10], seed=0)
    truth = 1.69 + 406.4 * 2e9**-0.34 + 410.7 * 4e10**-0.28
    row = pred.summary(levels=(0.9,)).iloc[0]
    assert row["90% lo"] <= truth <= row["90% hi"]


def test_fit_command_fits_curves_and_says_what_it_kept(tmp_path):
    """`bayeslaw fit` on a table of checkpoints: recognised, thinned as told, reported in JSON (schema-checked)."""
    import json
    from pathlib import Path

    import jsonschema
    from typer.testing import CliRunner

    import bayeslaw
    from bayeslaw.cli import app
    from bayeslaw.synthetic import learning_curves

    path = tmp_path / "curves.csv"
    learning_curves("chinchilla", sizes=3, multiples=(1.0,), checkpoints=30, seed=1).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["fit", str(path), "--chains", "2", "--draws", "50", "--tune", "50",
                                      "--no-retry", "--seed", "0", "--max-checkpoints", "10", "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == (0 if data["converged"] else 3), result.output  # 3: the fit did not converge
    schema = json.loads((Path(bayeslaw.__file__).parent / "schemas" / "fit.json").read_text())
    jsonschema.validate(data, schema)
    early = 3 * int((np.geomspace(0.02, 1.0, 30) < 0.1).sum())
    assert data["likelihood"] == "curve" and data["runs"] == 3
    assert data["curves"] == {"runs": 3, "checkpoints": 30, "given": 90, "dropped_early": early, "schedule": "cosine",
                              "min_progress": 0.1, "max_checkpoints": 10}
    bad = CliRunner().invoke(app, ["fit", str(path), "--schedule", "wsd"])
    assert bad.exit_code == 2 and "unknown learning-rate schedule 'wsd'" in bad.output


def test_tables_with_different_numbers_of_runs_fit_in_one_process():
    """The compiled density is reused per law, priors and likelihood, and per shape of the free variables: the
    curve model has a latent scale per run, so a table with fewer runs needs its own (nutpie refused the reused
    one with 'Initial point has incorrect length')."""
    import bayeslaw as bl
    from bayeslaw.synthetic import learning_curves

    for sizes in (3, 2):
        table = learning_curves("chinchilla", sizes=sizes, multiples=(1.0,), checkpoints=12, seed=sizes)
        result = bl.fit("chinchilla", table, chains=1, draws=20, tune=20, retry=False, seed=0, progress=False,
                        discrepancy=None)
        z = result.posterior["run_scale_z"]
        assert z.size == sizes * z.sizes["chain"] * z.sizes["draw"]
