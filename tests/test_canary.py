"""The canary: a fixed reference workload measured on each device before its first measurement."""

from __future__ import annotations

import json

from pytest_edgeai.canary import build, canary_profile
from pytest_edgeai.measure.profiles import PROFILES
from pytest_edgeai.results.compare import CANARY_METRIC, CANARY_SUITE, canaries
from pytest_edgeai.results.store import load_run

SUITE = '''
def test_one(edgeai_device, edgeai_bench, edgeai_model):
    edgeai_bench.single_stream(edgeai_model("cnn_trad_fpool3"))
    edgeai_bench.offline(edgeai_model("cnn_trad_fpool3"), batch=2)
'''


def test_the_canary_is_the_same_bytes_every_time_and_cheap_at_every_profile():
    assert build().SerializeToString() == build().SerializeToString()
    for profile in PROFILES.values():
        p = canary_profile(profile)
        assert p.min_duration_s <= 1.0 and p.warmup_s <= 0.2  # a second or so per device, at any profile


def _run(pytester, monkeypatch, *args):
    monkeypatch.delenv("EDGEAI_NO_CANARY")
    pytester.makepyfile(test_canary_suite=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--device", "cpu", "--edgeai-no-isolation",
                                "--edgeai-profile", "quick", *args)
    result.assert_outcomes(passed=1)
    return load_run(pytester.path / "reports" / "latest")


def test_each_device_measures_the_canary_once_before_its_first_measurement(pytester, monkeypatch):
    run = _run(pytester, monkeypatch)
    canary = [r for r in run.records if r.suite == CANARY_SUITE]
    assert len(canary) == 1 and canary[0].status == "ok"
    assert canary[0].metrics[CANARY_METRIC]["value"] > 0 and canary[0].samples["latency_ns"]
    assert set(canaries(run)) == {tuple(canary[0].device.get(f) or "" for f in ("name", "kind", "backend",
                                                                                  "hardware_id"))}
    assert json.loads(json.dumps(canary[0].scenario))["profile"]["name"] == "quick-canary"


def test_the_canary_can_be_skipped(pytester, monkeypatch):
    run = _run(pytester, monkeypatch, "--edgeai-no-canary")
    assert run.records and not [r for r in run.records if r.suite == CANARY_SUITE]
