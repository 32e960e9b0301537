"""A conftest adds a backend and a power meter through the hooks of pytest_edgeai.hookspecs, without touching
a global, and both reach the isolated worker that measures (a fresh process that loads no conftest)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ECHO_SESSION

from pytest_edgeai import registry
from pytest_edgeai.errors import ConfigError

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly")

LAB = '''
import os, time
from pathlib import Path
from pytest_edgeai import Availability, EnergyReading, TensorSpec  # the public API a lab extends with

HERE = Path(__file__).parent


def note(what):
    with (HERE / "pids.txt").open("a") as fh:
        fh.write(f"{what} {os.getpid()}\\n")

''' + ECHO_SESSION + '''
EchoSession = Session


class EchoBackend:
    name = "echo"

    def probe(self, device):
        return Availability(True, runtime="echo", runtime_version="0")

    def load(self, model, device):
        note("load")
        return EchoSession()


class ShuntMeter:
    """A stand-in meter: a constant 2 W, said to be estimated (it reads no sensor)."""

    def __init__(self, device, **options):
        self.baseline = None

    def start(self):
        note("meter")
        self.t0 = time.perf_counter()

    def stop(self):
        d = time.perf_counter() - self.t0
        return EnergyReading(joules=2.0 * d, mean_w=2.0, peak_w=2.0, duration_s=d, samples=[(0.0, 2.0), (d, 2.0)],
                             sample_kind="watts", source="shunt", covers="a constant stand-in", update_period_s=0.01,
                             estimated=True)

    def close(self):
        pass
'''

CONFTEST = '''
import lab


def pytest_edgeai_backends():
    return {"echo": "lab:EchoBackend"}


def pytest_edgeai_meters():
    return {"shunt": lab.ShuntMeter}  # the class itself: named by its module and qualified name
'''

DEVICES = '''
[devices.bench]
kind = "npu"
backend = "echo"
[devices.bench.meter]
source = "shunt"
'''

TEST = '''
def test_metered(edgeai_device, edgeai_model, edgeai_bench):
    edgeai_bench.offline(edgeai_model("tiny.onnx"), metered=True)
'''


@pytest.fixture
def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    """A lab's conftest, its backend and meter module, a devices.toml naming both (locks: tests/conftest.py)."""
    pytester.makepyfile(lab=LAB, conftest=CONFTEST, test_metered=TEST)
    pytester.makefile(".toml", devices=DEVICES)
    (pytester.path / "tiny.onnx").write_bytes(b"not read by the echo backend")
    return pytester


def test_a_conftests_backend_and_meter_measure_in_the_isolated_worker(lab):
    result = lab.runpytest("--device", "bench", *QUICK)
    result.assert_outcomes(passed=1)
    pids = [line.split() for line in (lab.path / "pids.txt").read_text().splitlines()]
    assert {what for what, _ in pids} == {"load", "meter"}
    assert len({pid for _, pid in pids}) == 1 and int(pids[0][1]) != os.getpid()  # one worker, not pytest
    [record] = [json.loads(p.read_text()) for p in (lab.path / "reports" / "latest" / "records").glob("*.json")]
    assert record["backend"]["name"] == "echo"
    energy = record["extra"]["energy"]
    assert energy["measured"] and energy["source"] == "shunt" and energy["estimated"] is True
    assert record["metrics"]["mean_w"]["value"] == 2.0 and record["metrics"]["mean_w"]["method"] == "estimated"


def test_what_a_conftest_added_ends_with_its_run(lab):
    lab.runpytest("--device", "bench", *QUICK).assert_outcomes(passed=1)
    assert registry.added() == {}
    (lab.path / "conftest.py").unlink()
    result = lab.runpytest("--device", "bench", *QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*devices.bench.backend: 'echo' is not allowed*"])


def test_one_name_added_twice_with_two_targets_is_one_clear_message(lab):
    lab.syspathinsert()
    lab.makepyfile(other_plugin='def pytest_edgeai_backends():\n    return {"echo": "elsewhere:Backend"}\n')
    result = lab.runpytest("-p", "other_plugin", "--device", "bench", *QUICK)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest_edgeai_backends: 'echo' is added twice, as * and as *"])
    assert "Traceback" not in result.stderr.str()


def test_a_hook_value_that_a_child_cannot_import_is_refused() -> None:
    with pytest.raises(ConfigError, match="defined at module level"):
        registry.add(registry.BACKENDS, {"local": lambda: None}, "pytest_edgeai_backends")
    assert registry.added().get(registry.BACKENDS, {}) == {}
