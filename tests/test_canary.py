"""The canary: a fixed reference workload read right before and after every timed measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgeai import canary
from pytest_edgeai.canary import FIELD, READING_MIN_COUNT, CanaryReader, bracket, build
from pytest_edgeai.devices import Device
from pytest_edgeai.lab import work
from pytest_edgeai.models.model import Model
from pytest_edgeai.results.compare import CANARY_SUITE, canaries, device_identity, record_canary
from pytest_edgeai.results.store import load_run

SUITE = '''
def test_one(edgeai_device, edgeai_bench, edgeai_model):
    edgeai_bench.single_stream(edgeai_model("cnn_trad_fpool3"))
    edgeai_bench.offline(edgeai_model("cnn_trad_fpool3"), batch=2)
'''


class Counting:
    """A session that counts its calls and which phase they fell in."""

    inputs: list[object] = []

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.phase = "load"

    def run(self, feeds):
        self.calls.append(self.phase)
        return {}

    def close(self) -> None:
        self.phase = "closed"


def test_the_canary_is_the_same_bytes_every_time():
    assert build().SerializeToString() == build().SerializeToString()


def test_bracket_reads_the_canary_right_before_and_after_the_timed_window():
    session = Counting()
    reader = CanaryReader(session, feeds={})
    timed_phase = []

    def timed():
        session.phase = "timed"
        timed_phase.append(len(session.calls))
        return "measured"

    session.phase = "reading"
    value, entry = bracket(reader, timed)
    assert value == "measured"
    before = session.calls[:timed_phase[0]]
    assert before.count("reading") >= READING_MIN_COUNT + 1  # one untimed call, then the reading
    assert entry is not None and entry["method"] == "measured" and entry["unit"] == "ms"
    assert entry["queries"][0] >= READING_MIN_COUNT and entry["queries"][1] >= READING_MIN_COUNT
    low, high = sorted(entry["readings_ms"])
    assert low <= entry["value"] <= high and entry["value"] > 0
    assert bracket(None, lambda: 1) == (1, None)
    assert bracket("it cannot run here", lambda: 2) == (2, {"reason": "it cannot run here"})


def test_a_backend_that_cannot_load_the_canary_gives_the_reason_once(monkeypatch):
    class Refusing:
        loads = 0

        def load(self, model, device):
            Refusing.loads += 1
            raise RuntimeError("no fp32 MatMul on this accelerator")

    monkeypatch.setattr(work, "get_backend", lambda name: Refusing())
    cache = work.ModelCache()
    device = Device(name="tpu", kind="edgetpu", backend="tflite")
    model = Model(name=canary.NAME, path=Path("/nowhere.onnx"), format="onnx", source="canary")
    first = cache.canary(device, model)
    assert isinstance(first, str) and "no fp32 MatMul" in first and "tpu" in first
    assert cache.canary(device, model) == first and Refusing.loads == 1


def _run(pytester, monkeypatch, *args):
    monkeypatch.delenv("EDGEAI_NO_CANARY")
    pytester.makepyfile(test_canary_suite=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--device", "cpu", *args, "--edgeai-profile", "quick")
    result.assert_outcomes(passed=1)
    return load_run(pytester.path / "reports" / "latest")


@pytest.mark.parametrize("isolation", [(), ("--edgeai-no-isolation",)], ids=["isolated", "in-process"])
def test_every_measurement_carries_its_own_canary_reading(pytester, monkeypatch, isolation):
    run = _run(pytester, monkeypatch, *isolation)
    assert not [r for r in run.records if r.suite == CANARY_SUITE]  # no run-start canary any more
    measured = [r for r in run.records if r.scenario.get("name") in ("single_stream", "offline")]
    assert len(measured) == 2
    for r in measured:
        entry = r.extra[FIELD]
        assert entry["method"] == "measured" and len(entry["readings_ms"]) == 2 and record_canary(r) > 0
    dev = device_identity(measured[0])
    own = [record_canary(r) for r in measured]
    assert canaries(run)[dev] == pytest.approx((own[0] + own[1]) / 2)  # the median of two


def test_the_canary_can_be_skipped(pytester, monkeypatch):
    run = _run(pytester, monkeypatch, "--edgeai-no-canary", "--edgeai-no-isolation")
    assert run.records and not [r for r in run.records if FIELD in r.extra or r.suite == CANARY_SUITE]
