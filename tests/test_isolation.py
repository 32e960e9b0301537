"""Isolation from crashing runtimes, driven through pytester with fake backends registered from a conftest.

Each fake misbehaves on its 4th call of ``run`` (inside the warm-up): it segfaults, hangs, or its device
vanishes. The pytest process must survive, name what happened, and skip what a lost device cannot run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import backends_conftest, devices_toml

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly")

FAKE_BACKENDS = '''
import ctypes, os, time
from pathlib import Path
from pytest_edgeai.backends.base import Availability, TensorSpec
from pytest_edgeai.errors import DeviceUnavailable

LOADS = Path(__file__).parent / "loads.txt"
PROBES = Path(__file__).parent / "probes.txt"


class FakeSession:
    inputs = [TensorSpec("x", ("N", 4), "float32")]
    outputs = [TensorSpec("y", ("N", 4), "float32")]

    def __init__(self, mode):
        self.mode, self.calls = mode, 0

    def run(self, feeds):
        self.calls += 1
        time.sleep(0.002)
        if self.calls > 3:
            if self.mode == "segfault":
                ctypes.string_at(0)
            elif self.mode == "hang":
                time.sleep(3600)
            elif self.mode == "vanish":
                raise DeviceUnavailable("fake accelerator fell off the USB bus")
            elif self.mode == "vendor_error":
                raise RuntimeError("vendor runtime: DMA error")
        return [feeds["x"]]

    def settings(self):
        return {"pid": os.getpid()}

    def close(self):
        pass


class FakeBackend:
    name = "fake"

    def probe(self, device):
        if device.options["mode"] == "probe_segfault":
            ctypes.string_at(0)
        if device.options["mode"] == "probe_hang":
            time.sleep(3600)
        with PROBES.open("a") as fh:
            fh.write(f"{device.name} {os.getpid()}\\n")
        return Availability(True, runtime="fake", runtime_version="0")

    def load(self, model, device):
        with LOADS.open("a") as fh:
            fh.write(f"{device.name} {os.getpid()}\\n")
        return FakeSession(device.options["mode"])
'''

CONFTEST = backends_conftest(fake="fakebackends:FakeBackend")

# a device per behaviour of the fake backend, named after it
DEVICES = devices_toml({mode: {"options": {"mode": mode}} for mode in
                        ("ok", "segfault", "hang", "vanish", "vendor_error", "probe_segfault", "probe_hang")},
                       kind="cpu", backend="fake")

TESTS = '''
import pytest

@pytest.mark.parametrize("batch", [1, 2])
def test_offline(edgeai_device, edgeai_model, edgeai_bench, batch):
    edgeai_bench.offline(edgeai_model("tiny.onnx"), batch=batch)
'''


@pytest.fixture
def bench_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    """Fake backends added the way a lab adds its own: a conftest's pytest_edgeai_backends hook."""
    monkeypatch.setenv("EDGEAI_LOCK_DIR", str(tmp_path / "locks"))
    pytester.makepyfile(fakebackends=FAKE_BACKENDS, conftest=CONFTEST, test_bench=TESTS)
    pytester.makefile(".toml", devices=DEVICES)
    (pytester.path / "tiny.onnx").write_bytes(b"not read by the fake backend")
    return pytester


def records(pytester: pytest.Pytester) -> list[dict]:
    run = (pytester.path / "reports" / "latest").resolve()
    return [json.loads(p.read_text()) for p in sorted((run / "records").glob("*.json"))]


def test_a_segfault_fails_that_test_names_the_signal_and_the_session_goes_on(bench_dir):
    result = bench_dir.runpytest("--device", "segfault,ok", *QUICK)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*the runtime crashed with SIGSEGV during the measurement*",
                                 "*Fatal Python error: Segmentation fault*"])
    by_device = {}
    for r in records(bench_dir):
        by_device.setdefault(r["device"]["name"], []).append(r)
    assert [r["status"] for r in by_device["segfault"]] == ["error", "error"]  # not lost: retried, fresh worker
    assert all("SIGSEGV" in r["error"] for r in by_device["segfault"])
    assert all(r["status"] == "ok" and r["samples"]["latency_ns"] for r in by_device["ok"])
    # the good device was measured in a worker process, which kept the model loaded across its tests
    assert {r["backend"]["settings"]["pid"] for r in by_device["ok"]} != {os.getpid()}
    loads = (bench_dir.path / "loads.txt").read_text().split("\n")
    assert sum(line.startswith("ok ") for line in loads) == 1
    assert sum(line.startswith("segfault ") for line in loads) == 2


def test_a_hang_is_killed_at_the_timeout_and_the_device_is_lost(bench_dir):
    result = bench_dir.runpytest("--device", "hang", "--edgeai-timeout", "1.5", *QUICK, "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*no answer within 1.5 s (--edgeai-timeout) during the measurement*"])
    result.stdout.fnmatch_lines(["*SKIPPED*device hang was lost earlier in this run: *no answer within 1.5 s*"])
    [record] = records(bench_dir)
    assert record["status"] == "error" and "was killed" in record["error"]


def test_a_vanished_device_is_lost_and_fails_its_remaining_tests_under_strict(bench_dir):
    result = bench_dir.runpytest("--device", "vanish", *QUICK, "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*DeviceUnavailable: fake accelerator fell off the USB bus*",
                                 "*SKIPPED*lost earlier in this run: fake accelerator fell off the USB bus*"])
    strict = bench_dir.runpytest("--device", "vanish", "--edgeai-strict", *QUICK)
    strict.assert_outcomes(failed=1, errors=1)
    strict.stdout.fnmatch_lines(["*lost earlier in this run*[[]--edgeai-strict[]]*"])


def test_a_vendor_exception_is_one_line_and_the_worker_stays(bench_dir):
    result = bench_dir.runpytest("--device", "vendor_error", *QUICK)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*the runtime failed: RuntimeError: vendor runtime: DMA error*"])
    assert all(r["error"] == "RuntimeError: vendor runtime: DMA error" for r in records(bench_dir))


def test_no_isolation_measures_in_the_pytest_process(bench_dir):
    result = bench_dir.runpytest("--device", "ok", "--edgeai-no-isolation", *QUICK)
    result.assert_outcomes(passed=2)
    assert {r["backend"]["settings"]["pid"] for r in records(bench_dir)} == {os.getpid()}


def test_a_bad_timeout_is_a_usage_error(bench_dir):
    result = bench_dir.runpytest("--device", "ok", "--edgeai-timeout", "soon", *QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgeai-timeout soon: give a positive number of seconds*"])


def test_a_probe_that_crashes_or_hangs_skips_its_device_and_the_session_goes_on(bench_dir, monkeypatch):
    """Asking a vendor's runtime whether a device is there runs in the device's worker too."""
    from pytest_edgeai import run

    monkeypatch.setattr(run, "PROBE_TIMEOUT_S", 1.5)
    result = bench_dir.runpytest("--device", "probe_segfault,probe_hang,ok", *QUICK, "-rs")
    result.assert_outcomes(passed=2, skipped=4)
    result.stdout.fnmatch_lines_random([
        "*SKIPPED*device probe_segfault (cpu, fake) is not attached: probing it in its isolated worker failed: "
        "the runtime crashed with SIGSEGV during probe_segfault: probe*",
        "*SKIPPED*device probe_hang was lost earlier in this run: probe_hang: probe: no answer within 1.5 s*"])
    assert [r["device"]["name"] for r in records(bench_dir)] == ["ok", "ok"]
    [probed] = (bench_dir.path / "probes.txt").read_text().splitlines()
    assert probed.split()[0] == "ok" and int(probed.split()[1]) != os.getpid()
