"""Suites under pytest-xdist: one run for every worker, one report, and one measurement at a time per device.

Both workers run every test (--dist each) and meet at a barrier before measuring cpu_a, so they reach
that device at the same moment: only the device lock keeps their measurements apart. The one that got
cpu_a first moves on to cpu_b while the other measures cpu_a: different devices (cpu_a and cpu_b are two
hardware_ids) have different locks, so cpu_b is not held up by cpu_a's holder. Two cpu devices without a
hardware_id are the host's one CPU: never at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import devices_toml

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly")

DEVICES = devices_toml({"cpu_a": {"hardware_id": "bench-cpu_a"}, "cpu_b": {"hardware_id": "bench-cpu_b"},
                        "cpu": {}, "other_runtime_cpu": {}},
                       kind="cpu", backend="onnxruntime", options={"intra_op_num_threads": 1})

CONTENDED = '''
import os, time
from pathlib import Path

def barrier(name, parties=2, timeout=60):
    """Wait until every worker reached this point (files in the test dir)."""
    here = Path(__file__).parent / "barrier" / name
    here.mkdir(parents=True, exist_ok=True)
    (here / os.environ["PYTEST_XDIST_WORKER"]).touch()
    deadline = time.monotonic() + timeout
    while len(list(here.iterdir())) < parties:
        assert time.monotonic() < deadline, "the other worker never came"
        time.sleep(0.01)

MODEL = "cnn_trad_fpool3"  # the zoo's smallest: about 0.5 ms an inference, so few samples to summarise


def test_offline(edgeai_device, edgeai_model, edgeai_bench):
    model = edgeai_model(MODEL)
    if edgeai_device.name == "cpu_a":
        barrier(edgeai_device.name)
    edgeai_bench.offline(model, batch=1)
'''

# one test per device, one device per worker (--dist load, two tests, two workers), both measured at once
SHARED_CPU = CONTENDED.split("MODEL =")[0] + '''
MODEL = "cnn_trad_fpool3"


def test_offline(edgeai_device, edgeai_model, edgeai_bench):
    model = edgeai_model(MODEL)
    barrier("host")
    edgeai_bench.offline(model, batch=1)
'''

DIES = '''
import os, signal

MODEL = "cnn_trad_fpool3"

def test_measures_then_its_worker_dies(edgeai_device, edgeai_model, edgeai_bench):
    edgeai_bench.single_stream(edgeai_model(MODEL))
    os.kill(os.getpid(), signal.SIGKILL)

def test_after(edgeai_device, edgeai_model, edgeai_bench):
    edgeai_bench.single_stream(edgeai_model(MODEL))
'''


@pytest.fixture
def lab(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    monkeypatch.setenv("EDGEAI_LOCK_DIR", str(tmp_path / "locks"))
    pytester.makefile(".toml", devices=DEVICES)
    return pytester


def the_run(pytester: pytest.Pytester) -> Path:
    runs = [p for p in (pytester.path / "reports").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1, runs
    return runs[0]


def test_workers_share_one_run_and_never_measure_one_device_at_once(lab):
    lab.makepyfile(test_contended=CONTENDED)
    result = lab.runpytest("-n", "2", "--dist", "each", "--device", "cpu_a,cpu_b", *QUICK)
    result.assert_outcomes(passed=4)
    run = the_run(lab)
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and set(meta["workers"]) == {"gw0", "gw1"}
    assert (run / "report.html").is_file()
    records = [json.loads(p.read_text()) for p in (run / "records").glob("*.json")]
    assert len(records) == 4
    assert {r["extra"]["worker"]["id"] for r in records} == {"gw0", "gw1"}
    for device in ("cpu_a", "cpu_b"):
        first, second = sorted((r for r in records if r["device"]["name"] == device),
                               key=lambda r: r["extra"]["started_at"])
        assert first["extra"]["worker"]["id"] != second["extra"]["worker"]["id"]
        assert first["extra"]["started_at"] + first["extra"]["wall_s"] <= second["extra"]["started_at"]
    contended = sorted((r for r in records if r["device"]["name"] == "cpu_a"), key=lambda r: r["extra"]["started_at"])
    assert contended[1]["extra"]["lock_wait_s"] > contended[0]["extra"]["wall_s"] / 2  # it waited for the other
    # Different hardware_ids are different locks: the first measurement of cpu_b never waited behind the
    # worker that held cpu_a (whether the two windows overlap in time is up to the scheduler, not the lock).
    free = min((r for r in records if r["device"]["name"] == "cpu_b"), key=lambda r: r["extra"]["started_at"])
    assert free["extra"]["lock_wait_s"] < contended[1]["extra"]["wall_s"] / 2
    result.stdout.fnmatch_lines([f"edgeai: 4 records in {run}; HTML report: *"])


def test_two_cpu_devices_without_a_hardware_id_share_the_host_cpu_lock(lab):
    """cpu and a second runtime's cpu reach their devices at the same moment on two workers: one waits."""
    lab.makepyfile(test_shared=SHARED_CPU)
    result = lab.runpytest("-n", "2", "--dist", "load", "--device", "cpu,other_runtime_cpu", *QUICK)
    result.assert_outcomes(passed=2)
    records = sorted((json.loads(p.read_text()) for p in (the_run(lab) / "records").glob("*.json")),
                     key=lambda r: r["extra"]["started_at"])
    assert {r["device"]["name"] for r in records} == {"cpu", "other_runtime_cpu"}
    assert {r["extra"]["worker"]["id"] for r in records} == {"gw0", "gw1"}  # at once, but for the lock
    first, second = records
    assert first["extra"]["started_at"] + first["extra"]["wall_s"] <= second["extra"]["started_at"]
    assert second["extra"]["lock_wait_s"] > first["extra"]["wall_s"] / 2  # it waited for the other


def test_a_worker_that_dies_loses_no_record(lab):
    lab.makepyfile(test_dies=DIES)
    result = lab.runpytest("-n", "1", "--device", "cpu_a", *QUICK)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*crashed while running*test_measures_then_its_worker_dies*"])
    records = [json.loads(p.read_text()) for p in (the_run(lab) / "records").glob("*.json")]
    assert sorted(r["test_id"].split("::")[1] for r in records) == [
        "test_after[cpu_a]", "test_measures_then_its_worker_dies[cpu_a]"]
    assert all(r["status"] == "ok" for r in records)
    result.stdout.fnmatch_lines(["edgeai: 2 records in *"])
