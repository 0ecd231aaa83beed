"""Issue 11: each failure found by trying bayeslaw as a careless or hostile user, through the installed command.

Every refusal is exit 1 (bad input, failed work) or 2 (a usage error, before any file is read), one line on
stderr, no traceback, no partial file. Write failures on a read-only and on a full file system use a small
tmpfs (root only; skipped with the reason elsewhere).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import pytest
from conftest import bayeslaw_command, fake_fit, run_cli

from bayeslaw.cli import EXIT_ERROR, EXIT_USAGE
from bayeslaw.synthetic import ladder

PREVIOUS = b"a previous output that must survive\n"


def in_process(*args) -> subprocess.CompletedProcess:
    """The same command through ``bayeslaw.cli.main`` in this process (variants of a case already run by the
    installed command: a second subprocess would cost a second of start-up)."""
    code, out, err = run_cli(*args)
    return subprocess.CompletedProcess(["bayeslaw", *map(str, args)], code, out, err)


def one_error(proc: subprocess.CompletedProcess, code: int, *parts: str) -> str:
    """Exit ``code``, exactly one 'error:' line on stderr (and nothing before it: no work was started)."""
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    for part in parts:
        assert part in lines[0], f"{part!r} not in: {lines[0]}"
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("issue11")
    runs = folder / "runs.csv"
    ladder("chinchilla", sizes=4, seed=0)[["N", "D", "loss"]].to_csv(runs, index=False)
    return {"folder": folder, "runs": runs, "fit": fake_fit().save(folder / "fit.nc")}


# ---- silent misreads and ignored input ----------------------------------------------------------------------------

def test_a_row_with_one_field_more_than_the_header_is_refused(tmp_path):
    """An unquoted thousands separator (8061898.723 written 8,061,898.723): pandas took the first field as the
    index and shifted every column left (N = 20, D = 673); the table was fitted."""
    path = tmp_path / "t.csv"
    path.write_text("N,D,loss\n8,061898.723,20,673,4.08\n" + "".join(f"{n}000000,{n}0000000000,3.5\n"
                                                                      for n in range(1, 13)))
    one_error(bayeslaw_command("fit", path), EXIT_ERROR, f"{path}: line 2 has 5 fields but the header has 3",
              "thousands separator")


def test_a_mapping_for_an_unknown_canonical_name_is_refused(files):
    """--column lss=my_loss was ignored and 'loss' fitted."""
    one_error(bayeslaw_command("fit", files["runs"], "--column", "lss=my_loss"), EXIT_USAGE,
              "column mapping lss=my_loss: 'lss' is not a name law 'chinchilla' reads")


def test_predict_refuses_an_input_the_law_does_not_take():
    """predict --at ZZ=5: exit 0 with ZZ ignored."""
    one_error(bayeslaw_command("predict", "--model", "chinchilla-besiroglu2024", "--N", "7e10", "--D", "1.4e12",
                               "--at", "ZZ=5"), EXIT_ERROR, "input ZZ is not used by law 'chinchilla'")


def test_plan_refuses_an_infinite_flops_per_param_token():
    """--flops-per-param-token inf: exit 0 and an all-NaN plan."""
    one_error(bayeslaw_command("plan", "--model", "chinchilla-besiroglu2024", "--budget", "1e22",
                               "--flops-per-param-token", "inf"), EXIT_USAGE,
              "--flops-per-param-token must be a finite number > 0, got inf")


def test_a_catalogue_entry_with_an_absurd_log_sd_is_refused(tmp_path):
    """A = { sd = 1e6, scale = "log" } passed validation and plan reported N_opt = 1 parameter."""
    source = Path(__file__).resolve().parents[1] / "models" / "chinchilla-hoffmann2022-printed.toml"
    text = source.read_text().replace('name = "chinchilla-hoffmann2022-printed"', 'name = "wide"')
    head, rest = text.split("[uncertainty]", 1)
    rest = rest.split("[[test_vectors]]", 1)[1]
    entry = tmp_path / "wide.toml"
    entry.write_text(head + '[uncertainty]\nkind = "independent"\nlabel = "x"\nnote = "x"\n[uncertainty.params]\n'
                     'A = { sd = 1e6, scale = "log" }\n\n[[test_vectors]]' + rest)
    one_error(bayeslaw_command("plan", "--model", entry, "--budget", "1e22"), EXIT_ERROR,
              "wide.toml: field 'uncertainty.params.A.sd' gives an sd of 1e+06 on the log scale; at most 5")


def test_plan_far_beyond_the_fitted_runs_warns(files):
    """plan fit.nc --budget 1e30 on runs that end near 3e21 FLOPs printed no extrapolation warning."""
    proc = bayeslaw_command("plan", files["fit"], "--budget", "1e30")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["warning: budgets lie up to 8.6 decades outside the fitted runs' compute "
                                        "(1.5e+17-2.76e+21 FLOPs): the plan extrapolates the law that far"]


def test_caps_that_cannot_spend_the_budget_name_the_largest_budget_they_allow():
    """plan(result, 1e24, max_params=7e10, max_tokens=2e12): all NaN with only a note."""
    one_error(bayeslaw_command("plan", "--model", "chinchilla-besiroglu2024", "--budget", "1e24", "--max-params",
                               "7e10", "--unique-tokens", "2e12"), EXIT_ERROR,
              "budget 1e+24 FLOPs cannot be spent within the caps: N <= 7e+10 parameters and D <= 2e+12 tokens allow "
              "at most C = 6 N D = 8.4e+23 FLOPs")


# ---- tracebacks instead of one line -------------------------------------------------------------------------------

def test_a_damaged_fit_attribute_is_named(files, tmp_path):
    """summary after corrupting priors, law_spec, discrepancy, diagnostics, info or data_notes: JSONDecodeError,
    KeyError or TypeError. One of each through the command, the others in process (the hostile-input suite
    damages every attribute many ways)."""
    cases = [("info", json.dumps({"attempts": [{"tune": 1}]}),  # was TypeError
              "attribute 'info' is damaged: attempts[0].draws must be a whole number, got None"),
             ("priors", "{not json", "attribute 'priors' is damaged: not JSON"),  # was JSONDecodeError
             ("diagnostics", json.dumps({"max_rhat": 1.0}),  # was KeyError
              "attribute 'diagnostics' is damaged: misses 'min_ess_bulk'"),
             ("data_notes", json.dumps({"mapped": {}}), "attribute 'data_notes' is damaged: misses 'derived'"),
             ("law_spec", "[]", "attribute 'law_spec' differs from law 'chinchilla'"),
             ("discrepancy", json.dumps({"kind": "gp"}), "attribute 'discrepancy' is damaged: misses 'inputs'")]
    for i, (name, value, rule) in enumerate(cases):
        copy = tmp_path / f"fit{i}.nc"
        shutil.copyfile(files["fit"], copy)
        with h5py.File(copy, "r+") as handle:
            handle["posterior"].attrs[name] = value
        result = bayeslaw_command("summary", copy) if i == 0 else in_process("summary", copy)
        one_error(result, EXIT_ERROR, f"{copy}: {rule}")


def test_a_seed_out_of_range_is_refused_before_compiling(files):
    """--seed -1 and 2^70: OverflowError inside the sampler, after compiling."""
    for seed, run in (("-1", bayeslaw_command), ("1180591620717411303424", in_process)):
        one_error(run("fit", files["runs"], "--seed", seed), EXIT_USAGE,
                  f"seed must be a whole number from 0 to 4294967287, got {seed}")


def test_a_prior_argument_too_large_for_a_float_is_refused(files):
    """--prior "alpha=LogNormal(mu=1<400 zeros>, sigma=1)": OverflowError."""
    one_error(bayeslaw_command("fit", files["runs"], "--prior", f"alpha=LogNormal(mu=1{'0' * 400}, sigma=1)"),
              EXIT_USAGE, "prior for 'alpha': an argument of LogNormal is too large for a number")


def test_a_catalogue_toml_nested_50000_deep_is_refused(tmp_path):
    """--model deep.toml holding a list nested 50,000 deep: RecursionError."""
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    one_error(bayeslaw_command("plan", "--model", deep, "--budget", "1e22"), EXIT_ERROR,
              "deep.toml: not a catalogue entry (its TOML nests too deeply to read)")


# ---- exit codes ---------------------------------------------------------------------------------------------------

def test_an_unreadable_budget_is_a_one_line_usage_error():
    """--budget 1e printed the usage box and exited 2 while the README promised 1: usage errors are now 2 for
    every option, one line, and the README says so."""
    for budget, run in (("1e", bayeslaw_command), ("lots", in_process)):
        one_error(run("plan", "--model", "chinchilla-besiroglu2024", "--budget", budget), EXIT_USAGE,
                  f"--budget must be numbers, got '{budget}'")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "| 2 | a usage error" in readme


# ---- wasted work and small things ---------------------------------------------------------------------------------

def test_fit_into_a_missing_folder_is_refused_before_sampling(files, tmp_path):
    """fit --out into a missing folder was refused only after 16 to 23 s of sampling."""
    one_error(bayeslaw_command("fit", files["runs"], "--out", tmp_path / "missing" / "fit.nc"), EXIT_ERROR,
              f"cannot write {tmp_path / 'missing' / 'fit.nc'}: folder {tmp_path / 'missing'} does not exist")


def test_fit_onto_a_directory_is_refused_before_sampling_and_names_it(files, tmp_path):
    """fit --out onto a directory: refused after sampling, naming the hidden temporary by its absolute path."""
    line = one_error(bayeslaw_command("fit", files["runs"], "--out", tmp_path), EXIT_ERROR,
                     f"cannot write {tmp_path}: it is a directory")
    assert ".tmp" not in line and list(tmp_path.iterdir()) == []


def test_compare_with_a_holdout_on_an_unknown_column_is_refused_before_sampling(files):
    """compare --holdout on an unknown column: refused after sampling."""
    one_error(bayeslaw_command("compare", files["runs"], "--law", "chinchilla,power-C", "--holdout", "Q>1"),
              EXIT_ERROR, "holdout column 'Q' is not among the runs' columns")


def test_a_stale_temporary_of_a_killed_save_is_removed_by_the_next_write(files, tmp_path):
    """kill -9 during a save left .out.nc.XXXX.tmp behind: the next write of that output removes the temporaries
    of writers that are gone, and keeps those of live ones."""
    from bayeslaw.files import _HOST

    out = tmp_path / "out.png"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [tmp_path / f".out.png.{_HOST}-{dead.pid}.0a1b2c3d.tmp", tmp_path / ".out.png.k2j4h5g6.tmp"]
    live = tmp_path / f".out.png.{_HOST}-{os.getpid()}.deadbeef.tmp"
    for path in [*stale, live]:
        path.write_bytes(b"half a file")
    os.utime(stale[1], (0, 0))  # the old naming, without a process: stale once old
    proc = bayeslaw_command("plot", files["fit"], "--kind", "frontier", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name])


def test_a_directory_given_as_the_input_is_named_as_one(tmp_path):
    """A directory given as a table or fit file was reported as 'no such file'."""
    one_error(bayeslaw_command("fit", tmp_path), EXIT_ERROR, f"{tmp_path}: is a directory, not a CSV file")
    one_error(in_process("summary", tmp_path), EXIT_ERROR, f"{tmp_path}: is a directory, not a fit file")


def test_a_single_bad_line_is_named_in_the_singular(files, tmp_path):
    """'lines 5 are ...' for a single line."""
    lines = files["runs"].read_text().splitlines()
    lines[4] = "-" + lines[4]
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(lines) + "\n")
    one_error(bayeslaw_command("fit", path), EXIT_ERROR, "column 'N' (N): line 5 is zero or negative")


# ---- read-only and full file systems ------------------------------------------------------------------------------

@pytest.fixture
def tmpfs(tmp_path):
    """A 512 KiB tmpfs, mounted for the test: root only, skipped with the reason elsewhere."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "fs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def read_only(mount: Path) -> Path:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)
    return mount


def fill(mount: Path) -> Path:
    """Fill the file system to the last byte."""
    with open(mount / "filler", "wb", buffering=0) as handle:
        for size in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * size)
    with pytest.raises(OSError) as info:
        (mount / "probe").write_bytes(b"x" * 4096)
    assert info.value.errno == errno.ENOSPC
    (mount / "probe").unlink()
    return mount


def untouched(mount: Path, before: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in mount.iterdir() if p.name != "filler"} == before


def test_fit_onto_a_read_only_file_system(files, tmpfs):
    (tmpfs / "fit.nc").write_bytes(PREVIOUS)
    read_only(tmpfs)
    one_error(bayeslaw_command("fit", files["runs"], "--out", tmpfs / "fit.nc"), EXIT_ERROR,
              f"cannot write {tmpfs / 'fit.nc'}: Read-only file system")
    untouched(tmpfs, {"fit.nc": PREVIOUS})


def test_plot_onto_a_read_only_file_system(files, tmpfs):
    read_only(tmpfs)
    one_error(bayeslaw_command("plot", files["fit"], "--kind", "frontier", "-o", tmpfs / "f.png"), EXIT_ERROR,
              f"cannot write {tmpfs / 'f.png'}: Read-only file system")
    untouched(tmpfs, {})


def test_fit_onto_a_full_disk(files, tmpfs):
    """The fit runs (the disk has room for the probe), then the save fails: one line, exit 1 (it was a traceback
    and a segmentation fault, exit 139), the previous file kept, no temporary left."""
    (tmpfs / "fit.nc").write_bytes(PREVIOUS)
    fill(tmpfs)
    proc = bayeslaw_command("fit", files["runs"], "--out", tmpfs / "fit.nc", "--chains", "2", "--draws", "50",
                            "--tune", "50", "--no-retry", "--seed", "1", "--discrepancy", "none", "--no-progress")
    assert proc.returncode == EXIT_ERROR, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot write {tmpfs / 'fit.nc'}: No space left on device ({errors[0].split('(')[-1]}"]
    assert "Traceback" not in proc.stderr and "Segmentation" not in proc.stderr
    untouched(tmpfs, {"fit.nc": PREVIOUS})


def test_report_onto_a_full_disk(files, tmpfs):
    (tmpfs / "r.html").write_bytes(PREVIOUS)
    fill(tmpfs)
    one_error(bayeslaw_command("report", files["fit"], "-o", tmpfs / "r.html"), EXIT_ERROR,
              f"cannot write {tmpfs / 'r.html'}: No space left on device")
    untouched(tmpfs, {"r.html": PREVIOUS})
