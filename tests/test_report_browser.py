"""The report as a person opens it: a real throughput run rendered, opened in headless Chromium.

Checks that the page renders (DOM dumped, screenshot taken), the charts are there as SVG, nothing is
fetched (no external reference; the CSP forbids it anyway and Chromium would log the refusal),
no console error, and a hostile device name shows as text. Skips when Chromium is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_edgeai.report.html import write_report

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<img src=x onerror=alert(1)>"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _chromium() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip(f"no headless browser: install Debian's 'chromium' package (looked for {', '.join(BROWSERS)})")


def _browse(browser: str, page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
             *args, page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    reports = tmp_path_factory.mktemp("reports")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "suites" / "test_throughput.py"), "-k", "cnn_trad_fpool3",
         "--edgeai-profile", "quick", "--edgeai-batches", "1,4", "--edgeai-report-dir", str(reports),
         "-p", "no:cacheprovider", "-q"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # a missed claim still writes the run
    runs = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1, done.stdout
    return runs[0]


def test_the_report_of_a_real_run_renders_in_chromium(real_run, tmp_path):
    browser = _chromium()
    page = real_run / "report.html"
    assert page.is_file() and page.stat().st_size < 3_000_000
    dom = _browse(browser, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    assert "<svg" in dom.stdout and "cnn_trad_fpool3" in dom.stdout and "offline throughput against batch" in dom.stdout
    assert "CONSOLE" not in dom.stderr and "Refused to" not in dom.stderr, dom.stderr
    shot = tmp_path / "report.png"
    _browse(browser, page, f"--screenshot={shot}", "--window-size=1280,2400")
    assert shot.is_file() and shot.stat().st_size > 10_000
    if os.environ.get("EDGEAI_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["EDGEAI_KEEP_SCREENSHOT"])


def test_a_hostile_device_name_is_text_in_the_browser(real_run, tmp_path):
    browser = _chromium()
    copy = tmp_path / "run"
    shutil.copytree(real_run, copy)
    for file in (copy / "records").glob("*.json"):
        data = json.loads(file.read_text())
        data["device"]["name"] = EVIL
        file.write_text(json.dumps(data))
    page = write_report(copy)
    dom = _browse(browser, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    assert "onerror" not in dom.stdout.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom.stdout
