"""Choosing runs by a rule: read without eval, applied to the runs' columns and the derived C."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import converged_exit

from bayeslaw.data import load_runs
from bayeslaw.demo import chinchilla_sweep
from bayeslaw.errors import BayeslawError
from bayeslaw.where import Condition, Where, choose_runs


@pytest.fixture(scope="module")
def runs():
    return load_runs(chinchilla_sweep("besiroglu2024", noise=0.01, seed=0), "chinchilla")


def test_rules_are_read_with_suffixes_and_python_precedence(runs):
    rule = Where.parse("C<1e19 or C>1e21 and N>=1B")
    assert str(rule) == "C<1e+19 or C>1e+21 and N>=1e+09"
    c = 6 * runs.frame["N"].to_numpy() * runs.frame["D"].to_numpy()
    n = runs.frame["N"].to_numpy()
    from bayeslaw.holdout import columns_of

    assert np.array_equal(rule.mask(columns_of(runs)), (c < 1e19) | ((c > 1e21) & (n >= 1e9)))
    assert Condition.parse("D != 1.4T") == Condition("D", "!=", 1.4e12)
    assert Where.parse(" N > 70M AND D < 2e11 ").clauses == ((Condition("N", ">", 7e7), Condition("D", "<", 2e11)),)


@pytest.mark.parametrize("text", ['__import__("os").system("true")', "N.__class__ > 1", "C<1e21; rm -rf /",
                                  "(C<1e21)", "C < N", "lambda: 1", "C<1e21 and", "exec('1')"])
def test_anything_but_conditions_is_refused_in_one_line(text):
    with pytest.raises(BayeslawError) as err:
        Where.parse(text)
    message = str(err.value)
    assert "\n" not in message and ("cannot read where" in message or "is not a number" in message), message


def test_choose_runs_keeps_renumbers_and_refuses_empty_or_unknown(runs):
    chosen = choose_runs(runs, "C<=1e20", exclude_rows=[0, 1])
    c = 6 * runs.frame["N"] * runs.frame["D"]
    expected = runs.frame[(c <= 1e20).to_numpy() & (np.arange(len(runs)) > 1)]
    assert len(chosen) == len(expected) and chosen.frame.index.tolist() == list(range(len(expected)))
    assert np.array_equal(chosen.frame["N"].to_numpy(), expected["N"].to_numpy())
    with pytest.raises(BayeslawError, match="where column 'Q' is not among the runs' columns"):
        choose_runs(runs, "Q>1")
    with pytest.raises(BayeslawError, match=r"leave none of the \d+ runs"):
        choose_runs(runs, "C>1e40")
    with pytest.raises(BayeslawError, match=r"row 9999 does not exist \(the runs are rows 0 to \d+\)"):
        choose_runs(runs, exclude_rows=[9999])
    with pytest.raises(BayeslawError, match="the threshold must be a finite number"):
        choose_runs(runs, "C<inf")


def test_commands_that_fit_take_where_and_exclude_rows(tmp_path, capsys):
    """fit, compare and calibrate: the rule and the rows are read before anything is fitted (exit 2 when they
    cannot be), and the fit sees only the chosen runs."""
    import bayeslaw as bl
    from bayeslaw.cli import EXIT_USAGE, main

    frame = chinchilla_sweep("besiroglu2024", noise=0.01, seed=0)
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    c = 6 * frame["N"] * frame["D"]
    for command in (["fit", str(path)], ["compare", str(path), "--law", "chinchilla,power"],
                    ["calibrate", str(path), "--holdout", "C>1e20"]):
        assert main([*command, "--where", "N.__class__>1"]) == EXIT_USAGE
        assert main([*command, "--exclude-rows", "1;2"]) == EXIT_USAGE
    out = tmp_path / "fit.nc"
    code = main(["fit", str(path), "--where", "C<=1e20 and N>=50M", "--exclude-rows", "0,1", "--chains", "1",
                 "--draws", "60", "--tune", "60", "--no-retry", "--discrepancy", "none", "--seed", "0",
                 "--no-progress", "--out", str(out)])
    stderr = capsys.readouterr().err
    assert converged_exit(code, stderr) and "runs chosen by where 'C<=1e+20 and N>=5e+07', rows 0,1 left out" in stderr
    chosen = frame[(c <= 1e20) & (frame["N"] >= 5e7) & (np.arange(len(frame)) > 1)]
    fitted = bl.load(out).runs.frame
    assert len(fitted) == len(chosen) and np.allclose(fitted["N"], chosen["N"])
    assert np.allclose(fitted["D"], chosen["D"])
