"""The HTML report on the real Chinchilla runs: self-contained, holds the tables and figures, and
renders in headless Chromium (installed by .ci/run; in CI a missing Chromium fails the test)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib.image as mpimg
import numpy as np
import pytest
from typer.testing import CliRunner

from bayeslaw.cli import EXIT_ERROR, app
from bayeslaw.errors import BayeslawError
from bayeslaw.report import render, report

runner = CliRunner()
BUDGETS = [1e22, 1e24]


class Text(HTMLParser):
    """The visible text of a page, and the src of its images."""

    def __init__(self):
        super().__init__()
        self.parts, self.images, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)

    @classmethod
    def of(cls, page: str) -> Text:
        parser = cls()
        parser.feed(page)
        return parser

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


@pytest.fixture(scope="module")
def page(chinchilla_fit_small, tmp_path_factory):
    path = report(chinchilla_fit_small, tmp_path_factory.mktemp("report") / "report.html", BUDGETS)
    return path


def parameter_cells(fit) -> list[str]:
    """Each parameter's name and its median as the report prints them."""
    table = fit.summary()
    return [cell for name in table.index for cell in (name, f"{table.loc[name, 'median']:.4g}")]


def test_report_is_self_contained_and_complete(page, chinchilla_fit_small):
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)  # nothing fetched
    assert "<script" not in html and "<link" not in html and "@import" not in html
    parsed = Text.of(html)
    assert len(parsed.images) == 4  # isoFLOP, frontier, extrapolation, pairs
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    text = parsed.text
    for heading in ("Data", "Diagnostics", "Parameters", "Figures", "Plan"):
        assert re.search(rf"\b{heading}\b", text)
    assert "240 runs" in text and "converged" in text
    for cell in parameter_cells(chinchilla_fit_small):
        assert f"<th>{cell}</th>" in html or f"<td>{cell}</td>" in html, cell
    for budget in ("C = 1e+22 FLOPs", "C = 1e+24 FLOPs"):
        assert budget in text
    assert "N_opt median" in text and "D_opt median" in text


def test_report_defaults_and_laws_without_n_and_d(power_c_fit_small, chinchilla_fit_small):
    text = Text.of(render(chinchilla_fit_small)).text
    assert "C = 1e+23 FLOPs" in text and "C = 1e+25 FLOPs" in text  # 10x and 1000x the largest run (1.3e22)
    parsed = Text.of(render(power_c_fit_small, [1e23]))
    assert len(parsed.images) == 2  # extrapolation and pairs; isoFLOP and frontier need N and D
    assert parsed.text.count("not available for this law") == 2
    assert ("NOT CONVERGED" in parsed.text) == (not power_c_fit_small.converged)
    assert "no plan for this law" in parsed.text
    with pytest.raises(BayeslawError, match="budgets"):
        render(chinchilla_fit_small, [-1.0])


def test_report_write_is_atomic(chinchilla_fit_small, tmp_path, monkeypatch):
    with pytest.raises(BayeslawError, match="does not exist"):
        report(chinchilla_fit_small, tmp_path / "missing" / "report.html")
    target = tmp_path / "report.html"
    target.write_text("old")
    monkeypatch.setattr("bayeslaw.report.render", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        report(chinchilla_fit_small, target)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (CI installs it in .ci/run)")
        pytest.skip("chromium is not installed")
    return found


def test_report_renders_in_headless_chromium(page, chinchilla_fit_small, tmp_path):
    browser = chromium()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = mpimg.imread(shot)[..., :3]
    assert image.shape[:2] == (2000, 1200)
    assert image.std() > 0.05 and (image.mean(axis=-1) < 0.9).mean() > 0.02  # drawn on, not a blank page
    assert (np.abs(image[..., 0] - image[..., 2]) > 0.2).any()  # the coloured figures rendered
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    text = Text.of(dom).text
    assert "bayeslaw report: chinchilla" in text and "Parameters" in text
    for cell in parameter_cells(chinchilla_fit_small):
        assert cell in text


def test_cli_report(chinchilla_fit_small, tmp_path):
    fit_file = chinchilla_fit_small.save(tmp_path / "fit.nc")
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(fit_file), "-o", str(out), "--budget", "1e22,1e24"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "C = 1e+24 FLOPs" in out.read_text()
    result = runner.invoke(app, ["report", str(fit_file), "-o", str(tmp_path / "no" / "r.html")])
    assert result.exit_code == EXIT_ERROR and "does not exist" in result.output


def test_the_report_opens_with_the_answer_in_human_units(chinchilla_fit_small):
    """The first thing after the title: per budget N, D and the loss with 90% intervals in K/M/B/T, then whether
    the fit converged; the figures next, the details after them."""
    import dataclasses

    from bayeslaw.plan import plan
    from bayeslaw.report import headline
    from bayeslaw.units import human

    lines = headline(chinchilla_fit_small, BUDGETS)
    row = plan(chinchilla_fit_small, [1e24]).summary((0.9,)).iloc[0]
    want = (f"At 1e+24 FLOPs: N {human(row['N_opt median'])} [{human(row['N_opt 90% lo'])}, "
            f"{human(row['N_opt 90% hi'])}] parameters, D {human(row['D_opt median'])} [")
    assert lines[1].startswith(want) and re.search(r"\d[BT] \[\d", lines[1]), lines[1]
    assert re.search(r"loss \d\.\d+ \[\d\.\d+, \d\.\d+\]\.$", lines[1]) and lines[-1].startswith("The fit converged")
    text = Text.of(render(chinchilla_fit_small, BUDGETS)).text
    assert text.index("At 1e+22 FLOPs: N") < text.index("Figures") < text.index("Diagnostics")
    bad = dataclasses.replace(chinchilla_fit_small.diagnostics, max_rhat=1.2, slowest=("alpha",))
    unconverged = dataclasses.replace(chinchilla_fit_small, diagnostics=bad)
    assert headline(unconverged, [])[-1].startswith("The fit did NOT converge: R-hat")


def test_the_answer_is_on_the_first_screen_in_headless_chromium(page, tmp_path):
    """Must-show: rendered at 1200 x 1000 px (one screen), the answer box (its own background colour) lies inside
    it, and the page's DOM puts the answer's sentences right after the title."""
    browser = chromium()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "first_screen.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,1000", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = (mpimg.imread(shot)[..., :3] * 255).round()
    box = np.all(np.abs(image - [255, 244, 214]) <= 2, axis=-1)  # #fff4d6, the answer's background
    rows = np.flatnonzero(box.mean(axis=1) > 0.5)
    assert image.shape[:2] == (1000, 1200) and len(rows) > 60, len(rows)  # a box of sentences, not a stray pixel
    assert rows.max() < 1000 - 1 and rows.min() < 200  # the whole box, near the top of the first screen
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    text = Text.of(dom).text
    found = re.search(r"bayeslaw report: chinchilla At 1e\+22 FLOPs: N [\d.]+B \[", text)  # the title, then h1
    assert found and found.start() < 60, text[:200]


def test_report_says_how_far_it_is(tmp_path):
    """Each figure drawn prints a progress line with how many are left and about how long they will take."""
    from bayeslaw.report import report
    from bayeslaw.testing import fake_fit

    lines = []
    report(fake_fit("chinchilla", sizes=4), tmp_path / "r.html", [1e22], progress=lines.append)
    assert len(lines) == 4 and lines[0].startswith("isoFLOP profiles: 1 of 4 figures done in ")
    assert "s left" in lines[0] and lines[-1].startswith("parameter posteriors: 4 of 4 figures done in ")
