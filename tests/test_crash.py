"""Crash-safe runs: pytest killed with SIGKILL mid-run keeps every record it wrote, and the partial run
still renders, marked incomplete. The isolated measurement worker does not outlive the killed pytest."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_edgeai.results.store import load_run

SUITE = '''
import pytest

@pytest.mark.parametrize("batch", [1, 2, 3, 4, 5, 6, 7, 8])
def test_offline(edgeai_device, edgeai_model, edgeai_bench, batch):
    edgeai_bench.offline(edgeai_model("cnn_trad_fpool3"), batch=batch)
'''


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.05)
    return found


def workers_of(test_dir: Path) -> list[int]:
    """Isolated measurement workers started from ``test_dir`` (their PYTHONPATH names it)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if b"pytest_edgeai.lab.child" in (proc / "cmdline").read_bytes() and \
                    str(test_dir).encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir() or os.name != "posix", reason="needs SIGKILL and /proc")
def test_a_killed_run_keeps_its_records_and_reports_as_incomplete(pytester: pytest.Pytester, tmp_path: Path):
    pytester.makepyfile(test_many=SUITE)
    env = {**os.environ, "EDGEAI_LOCK_DIR": str(tmp_path / "locks"),
           "PYTHONPATH": os.pathsep.join([str(pytester.path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--edgeai-profile", "quick", "-p", "no:cacheprovider",
                             "-q"], cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = pytester.path / "reports" / "latest" / "records"
    try:
        wait_for(lambda: list(records.glob("*.json")) if records.is_dir() else [], 120, "no record was written")
        wait_for(lambda: workers_of(pytester.path), 30, "no isolated worker was seen")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    run = load_run(pytester.path / "reports" / "latest")
    assert run.problems == [] and run.meta["status"] == "running" and not run.complete
    assert 1 <= len(run.records) < 8
    assert all(r.status == "ok" and r.samples["latency_ns"] and r.metric("throughput_ips") for r in run.records)
    wait_for(lambda: not workers_of(pytester.path), 15, "the isolated worker outlived its killed pytest")

    cli = shutil.which("pytest-edgeai", path=str(Path(sys.executable).parent)) or shutil.which("pytest-edgeai")
    done = subprocess.run([cli, "report", str(run.path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    html = (run.path / "report.html").read_text()
    assert "incomplete" in html and "status: running" in html
    assert f"{len(run.records)} records" in html and "cnn_trad_fpool3" in html
