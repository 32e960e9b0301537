"""Claims: direction from the name, margins, estimates, and the checker's pass/fail/skip."""

from __future__ import annotations

import pytest

from pytest_edgeai.claims import ClaimChecker, ClaimSpec, judge
from pytest_edgeai.devices import Device
from pytest_edgeai.results.record import Record


def spec(name: str, threshold: float, **extras) -> ClaimSpec:
    return ClaimSpec("throughput", name, threshold, extras=extras)


def test_minimum_claim_says_how_far_short():
    r = judge(spec("min_inferences_per_s", 100), "cpu", "m", 75.0)
    assert r.verdict == "fail" and r.margin == pytest.approx(-0.25)
    assert r.message == ("min_inferences_per_s for m on cpu: expected >= 100 inferences/s, "
                         "observed 75 inferences/s (25.0% short)")
    assert judge(spec("min_inferences_per_s", 100), "cpu", "m", 100.0).verdict == "pass"


def test_maximum_claim_says_how_far_over():
    r = judge(spec("max_p90_latency_ms", 10), "cpu", "m", 12.0)
    assert r.verdict == "fail" and "(20.0% over)" in r.message
    ok = judge(spec("max_p90_latency_ms", 10), "cpu", "m", 8.0)
    assert ok.verdict == "pass" and ok.margin == pytest.approx(0.2)


def test_estimates_and_missing_figures_never_pass():
    assert judge(spec("min_inferences_per_s", 1), "cpu", "m", 5.0, estimated=True).verdict == "skip"
    assert judge(spec("min_inferences_per_s", 1, allow_estimate=True), "cpu", "m", 5.0, estimated=True).verdict == "pass"
    assert judge(spec("min_inferences_per_s", 1), "cpu", "m", None).verdict == "skip"
    assert judge(spec("min_inferences_per_s", 1), "cpu", "m", float("nan")).verdict == "skip"


class Stop(Exception):
    pass


def checker(device: Device, saved: list):
    def fail(msg):
        raise Stop("fail: " + msg)

    def skip(msg):
        raise Stop("skip: " + msg)

    return ClaimChecker(device, "throughput", save=saved.append, fail=fail, skip=skip)


def test_checker_records_the_verdict_before_failing():
    device = Device("cpu", "cpu", "onnxruntime", claims=(spec("min_inferences_per_s", 100),))
    saved: list = []
    c = checker(device, saved)
    record = Record("throughput", "t", {}, {}, {}, {})
    result = c.check("min_inferences_per_s", 50.0, "m", record)
    assert result.verdict == "fail"
    assert saved == [record] and record.claims[0]["verdict"] == "fail"
    with pytest.raises(Stop, match="fail: claim not met"):
        c.assert_met()


def test_checker_ignores_unstated_claims_and_skips_uncheckable_ones():
    device = Device("cpu", "cpu", "onnxruntime", claims=(spec("min_inferences_per_s", 1),))
    c = checker(device, [])
    assert c.check("max_p90_latency_ms", 3.0, "m") is None
    c.assert_met()  # nothing stated, nothing to fail
    c.check("min_inferences_per_s", None, "m")
    with pytest.raises(Stop, match="skip: claim not checkable here"):
        c.assert_met()
    with pytest.raises(KeyError):
        c.check("min_nonsense", 1.0, "m")
