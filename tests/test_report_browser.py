"""The report as a person opens it: a real throughput run rendered, opened in headless Chromium.

Checks that the page renders (DOM dumped, screenshot taken), the charts are there as SVG, nothing is
fetched (no external reference; the CSP forbids it anyway and Chromium would log the refusal),
no console error, and a hostile device name shows as text. Skips when Chromium is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html import unescape as html_unescape
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


# Layout as the browser lays it out: measured by a script added to a COPY of the page (the report
# itself runs no script, its CSP forbids them), read back from the dumped DOM.
LAYOUT_JS = """<script>window.addEventListener('load', () => {
  const box = e => e.getBoundingClientRect();
  const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 &&
                            a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const out = {height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth,
               clipped: [], overlapping: [], wide: []};
  for (const svg of document.querySelectorAll('svg')) {
    const s = box(svg);
    for (const t of svg.querySelectorAll('text')) {
      const r = box(t);
      if (r.width && (r.left < s.left - 1 || r.right > s.right + 1 || r.top < s.top - 1 || r.bottom > s.bottom + 1))
        out.clipped.push(t.textContent);
    }
    for (const axis of ['xtick', 'ytick']) {
      const labels = [...svg.querySelectorAll(`g[id^="${axis}_"] > g > text, g[id^="${axis}_"] text`)]
        .map(box).filter(r => r.width);
      for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++)
        if (overlap(labels[i], labels[j])) out.overlapping.push(axis);
    }
  }
  for (const t of document.querySelectorAll('table')) if (box(t).right > window.innerWidth && !t.closest('.scroll'))
    out.wide.push(Math.round(box(t).width));
  const pre = document.createElement('pre'); pre.id = 'layout'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script>"""


def layout(browser: str, page: Path, tmp_path: Path, width: int = 1400) -> dict:
    html = page.read_text(encoding="utf-8")
    copy = tmp_path / "layout.html"
    copy.write_text(html.replace('<meta http-equiv="Content-Security-Policy"', '<meta name="csp-removed"')
                    .replace("</body>", LAYOUT_JS + "</body>"), encoding="utf-8")
    dom = _browse(browser, copy, "--dump-dom", f"--window-size={width},1000")
    assert dom.returncode == 0, dom.stderr
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom.stdout)
    assert found, dom.stdout[-2000:]
    return json.loads(html_unescape(found.group(1)))


def test_the_report_reads_at_1400_px_without_clipped_or_overlapping_text(real_run, tmp_path):
    """No horizontal scroll of the page, no table wider than the window outside a scroll box, no chart
    text outside its chart (a clipped title, a legend cut off), no tick labels on top of each other."""
    browser = _chromium()
    shown = layout(browser, real_run / "report.html", tmp_path)
    assert shown["width"] <= 1400 and shown["wide"] == [], shown
    assert shown["clipped"] == [] and shown["overlapping"] == [], shown
    assert shown["height"] < 12_000, shown  # a one-model run: a few screens, its raw tables folded away


def test_a_long_history_reads_without_overlapping_run_labels(tmp_path):
    """The trend's x-axis names runs (id and start), few enough that the labels do not collide."""
    from pytest_edgeai.results import synthetic

    browser = _chromium()
    runs = [synthetic.write_run(tmp_path / "reports", 1.2 if i >= 20 else 1.0, seed=i,
                                started=1_700_000_000.0 + 3600 * i, batches=(1, 2), count=60,
                                models=("mobilenet_v2", "cnn_trad_fpool3"))
            for i in range(30)]
    page = write_report(runs[-1], history=runs[:-1], baseline=runs[-2])
    shown = layout(browser, page, tmp_path)
    assert "Trend across runs" in page.read_text()
    assert shown["overlapping"] == [] and shown["clipped"] == [] and shown["width"] <= 1400, shown
