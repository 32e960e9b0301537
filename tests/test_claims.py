"""Claims: judged on intervals (met / missed / inconclusive), re-measured when inconclusive, claims that
can fail (devices.toml rules), and the checker's outcomes (fail, xfail, strict, skip, no claims)."""

from __future__ import annotations

import math

import pytest

from pytest_edgeai import config as config_mod
from pytest_edgeai.claims import (
    CLAIMS,
    INCONCLUSIVE,
    MET,
    MISSED,
    NO_CLAIMS,
    UNCHECKED,
    ClaimChecker,
    ClaimSpec,
    Found,
    collected_problems,
    judge,
    judge_ratio,
    latest_metric,
    ratio_of,
)
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import ConfigError
from pytest_edgeai.measure.rounds import Estimate, cannot_settle, mean_estimate
from pytest_edgeai.results.record import Record


def spec(name: str, threshold: float, suite: str = "throughput", **extras) -> ClaimSpec:
    return ClaimSpec(suite, name, threshold, extras=extras)


def est(value: float, low: float, high: float, rounds: int = 3) -> Estimate:
    return Estimate(value, low, high, "test interval", rounds)


def test_minimum_claim_is_judged_on_its_interval():
    s = spec("min_inferences_per_s", 100)
    assert judge(s, "cpu", "m", est(120, 105, 135)).verdict == MET
    missed = judge(s, "cpu", "m", est(75, 70, 80))
    assert missed.verdict == MISSED and missed.margin == pytest.approx(-0.25)
    assert "(25.0% short)" in missed.message and "in [70, 80] (test interval)" in missed.message
    straddles = judge(s, "cpu", "m", est(110, 90, 130))
    assert straddles.verdict == INCONCLUSIVE and straddles.interval == [90, 130]
    assert "straddles" in straddles.message and straddles.settle and "rounds" in straddles.settle


def test_maximum_claim_is_judged_on_its_interval():
    s = spec("max_p90_latency_ms", 10)
    assert judge(s, "cpu", "m", est(8, 7, 9)).verdict == MET
    over = judge(s, "cpu", "m", est(12, 11, 13))
    assert over.verdict == MISSED and "(20.0% over)" in over.message
    assert judge(s, "cpu", "m", est(9, 8, 11)).verdict == INCONCLUSIVE
    # one window cannot bound a p90 above: never met on it
    assert judge(s, "cpu", "m", est(5, 4, math.inf, rounds=1)).verdict == INCONCLUSIVE


def test_a_bare_number_is_a_deterministic_figure_judged_exactly():
    r = judge(spec("min_inferences_per_s", 100), "cpu", "m", 100.0)
    assert r.verdict == MET and r.interval == [100.0, 100.0]


def test_estimates_and_missing_figures_never_pass():
    assert judge(spec("min_inferences_per_s", 1), "cpu", "m", est(5, 4, 6), estimated=True).verdict == UNCHECKED
    allowed = spec("min_inferences_per_s", 1, allow_estimate=True)
    assert judge(allowed, "cpu", "m", est(5, 4, 6), estimated=True).verdict == MET
    assert judge(spec("min_inferences_per_s", 1), "cpu", "m", None).verdict == UNCHECKED
    assert judge(spec("min_inferences_per_s", 1), "cpu", "m", float("nan")).verdict == UNCHECKED


class Stop(Exception):
    pass


def checker(device: Device, saved: list, strict: bool = False, max_rounds: int = 3):
    def out(kind):
        def raise_(msg):
            raise Stop(f"{kind}: {msg}")
        return raise_

    return ClaimChecker(device, "throughput", save=saved.append, fail=out("fail"), skip=out("skip"),
                        xfail=out("xfail"), strict=strict, max_rounds=max_rounds)


def cpu(*specs: ClaimSpec) -> Device:
    return Device("cpu", "cpu", "onnxruntime", claims=specs)


def record() -> Record:
    return Record("throughput", "t", {}, {}, {}, {})


def test_checker_records_the_verdict_and_its_interval_before_failing():
    saved: list = []
    c = checker(cpu(spec("min_inferences_per_s", 100)), saved)
    rec = record()
    result = c.check("min_inferences_per_s", est(50, 45, 55), "m", rec)
    assert result.verdict == MISSED
    assert saved == [rec] and rec.claims[0]["verdict"] == MISSED and rec.claims[0]["interval"] == [45, 55]
    with pytest.raises(Stop, match="fail: claim not met"):
        c.assert_met()


def test_a_bare_figure_from_the_record_is_judged_on_the_widest_interval_among_metrics_sharing_its_value():
    rec = record()  # the narrower one first: the first match alone would lend its interval
    rec.metrics["other_ips"] = {"value": 120.0, "unit": "inferences/s", "method": "measured", "ci95": [119.0, 121.0]}
    rec.metrics["throughput_ips"] = {"value": 120.0, "unit": "inferences/s", "method": "measured",
                                     "ci95": [80.0, 160.0]}
    result = checker(cpu(spec("min_inferences_per_s", 110)), []).check("min_inferences_per_s", 120.0, "m", rec)
    assert result.verdict == INCONCLUSIVE and result.interval == [80.0, 160.0]


def test_inconclusive_re_measures_up_to_the_budget_then_is_no_pass():
    c = checker(cpu(spec("min_inferences_per_s", 100)), [], max_rounds=5)
    calls = []

    def more():
        calls.append(1)
        return est(105, 95, 115, rounds=3 + len(calls))

    result = c.check("min_inferences_per_s", est(105, 90, 120, rounds=3), "m", record(), more=more)
    assert result.verdict == INCONCLUSIVE and len(calls) == 2 and result.rounds == 5
    with pytest.raises(Stop, match="xfail: claim inconclusive"):
        c.assert_met()
    strict = checker(cpu(spec("min_inferences_per_s", 100)), [], strict=True)
    strict.check("min_inferences_per_s", est(105, 90, 120), "m")
    with pytest.raises(Stop, match="(?s)fail: claim inconclusive .*--edgeai-strict"):
        strict.assert_met()


def test_an_interval_that_more_rounds_cannot_settle_is_not_re_measured():
    c = checker(cpu(spec("min_inferences_per_s", 100)), [], max_rounds=8)
    calls = []

    def more():
        calls.append(1)
        return mean_estimate([90, 112, 101, 100][:3 + len(calls)], "throughputs")

    # the rounds' mean sits on the threshold: even 8 rounds at half this spread would straddle it
    hopeless = mean_estimate([90, 112, 101], "throughputs")
    result = c.check("min_inferences_per_s", hopeless, "m", record(), more=more)
    assert result.verdict == INCONCLUSIVE and calls == [] and result.rounds == 3
    assert "not re-measured: at this spread even 8 rounds" in result.settle and "not re-measured" in result.message
    # well clear of the threshold at its centre, only too few rounds: re-measured as before
    close = checker(cpu(spec("min_inferences_per_s", 90)), [], max_rounds=8)
    rounds = [95, 118, 108]

    def again():
        rounds.append(107)
        return mean_estimate(rounds, "throughputs")

    first = mean_estimate(rounds, "throughputs")
    assert judge(spec("min_inferences_per_s", 90), "cpu", "m", first).verdict == INCONCLUSIVE
    assert close.check("min_inferences_per_s", first, "m", more=again).verdict == MET and len(rounds) > 3
    # an order-statistic interval (one window's p90) is never called hopeless: it re-measures as before
    assert not cannot_settle(Estimate(100, 90, 110, "95% order-statistic interval of p90", 3), 100, 8)


def test_re_measuring_stops_as_soon_as_the_interval_settles():
    c = checker(cpu(spec("min_inferences_per_s", 100)), [], max_rounds=10)
    more_calls = []

    def more():
        more_calls.append(1)
        return est(110, 104, 116, rounds=4)

    assert c.check("min_inferences_per_s", est(110, 95, 125), "m", more=more).verdict == MET
    assert len(more_calls) == 1
    c.assert_met()


def test_some_claims_met_and_others_not_checkable_is_not_a_pass():
    c = checker(cpu(spec("min_inferences_per_s", 1), spec("max_p90_latency_ms", 5)), [])
    c.check("min_inferences_per_s", est(5, 4, 6), "m")
    c.check("max_p90_latency_ms", None, "m")
    with pytest.raises(Stop, match="skip: claim not checkable here: .*max_p90.*; met: min_inferences_per_s"):
        c.assert_met()


def test_no_claims_configured_is_said_on_the_records():
    saved: list = []
    c = checker(cpu(), saved)
    rec = record()
    assert c.check("max_p90_latency_ms", est(3, 2, 4), "m", rec) is None
    c.assert_met()  # the measurement stands; the test does not fail for lacking claims
    assert rec.extra["claims_note"] == f"{NO_CLAIMS} for cpu in suite throughput" and saved == [rec]
    with pytest.raises(KeyError, match="edgeai_suite"):
        c.check("min_nonsense", 1.0, "m")


# --- devices.toml: claims that can fail -----------------------------------------------------------

def parse(claims: dict, models: dict | None = None):
    data = {"devices": {"cpu": {"kind": "cpu", "backend": "onnxruntime", "claims": claims}}}
    if models:
        data["models"] = models
    return config_mod.parse(data)


def test_a_model_key_that_names_no_workload_is_refused_with_did_you_mean():
    with pytest.raises(ConfigError, match=r"model 'mobilenetv2' names no workload \(did you mean 'mobilenet_v2'\?\)"):
        parse({"throughput": {"min_inferences_per_s": {"mobilenetv2": 20}}})
    # [models] entries, the zoo and the cascade workloads a claim defines are all names it may use
    ok = parse({"throughput": {"min_inferences_per_s": {"mine": 20, "mobilenet_v2": 10}},
                "compression": {"max_cascade_accuracy_loss": {"digits_uniform": {
                    "threshold": 0.02, "device_independent": True}}}},
               models={"mine": {"path": "mine.onnx"}})
    assert ok.devices["cpu"].claim("throughput", "min_inferences_per_s", "mine").threshold == 20


def test_a_zero_minimum_is_refused_and_a_zero_maximum_is_not():
    with pytest.raises(ConfigError, match="min_inferences_per_s: 0 is met by anything"):
        parse({"throughput": {"min_inferences_per_s": 0}})
    assert parse({"concurrency": {"max_tenants_prediction_error": 0}}).devices["cpu"].claims[0].threshold == 0


def test_a_claim_the_device_cannot_change_must_say_so():
    with pytest.raises(ConfigError, match="min_size_reduction does not depend on the device"):
        parse({"compression": {"min_size_reduction": 1.8}})
    ok = parse({"compression": {"min_size_reduction": {"threshold": 1.8, "device_independent": True}}})
    assert ok.devices["cpu"].claims[0].extras["device_independent"] is True
    with pytest.raises(ConfigError, match="device_independent = true is not true of it"):
        parse({"throughput": {"min_inferences_per_s": {"threshold": 1, "device_independent": True}}})


@pytest.mark.parametrize("name", ["min_cascade_latency_reduction", "max_cascade_accuracy_loss"])
def test_a_cascade_claim_must_say_whether_the_device_moves_it_and_its_verdict_says_what_was_said(name):
    """Over a 100 ms link the digits cascade's reduction is ~1 / the share offloaded whatever the device; on a slow
    or int8 device it is the device's: the configuration decides, so devices.toml says which, never a default."""
    with pytest.raises(ConfigError, match=rf"whether the device moves {name} depends on the configuration .*say "
                                          r"which, device_independent = true or false"):
        parse({"compression": {name: {"digits_uniform": {"threshold": 1.0, "at_threshold": 0.8}}}})
    for marked in (True, False):
        cfg = parse({"compression": {name: {"digits_uniform": {"threshold": 1.0, "device_independent": marked}}}})
        spec = cfg.devices["cpu"].claim("compression", name, "digits_uniform")
        result = judge(spec, "cpu", "digits_uniform", 0.5 if name.startswith("max_") else 3.0)
        assert result.verdict == "met" and result.device_independent is marked
        assert ("the same on any device" in result.message) is marked


@pytest.fixture
def own_suites():
    """Suites declared by a test are taken out of the registry afterwards."""
    before = set(CLAIMS)
    yield
    for suite in set(CLAIMS) - before:
        del CLAIMS[suite]


def test_claims_of_a_suite_of_ones_own_are_checked_once_collected(own_suites):
    device = parse({"lidar": {"min_frames_per_s": 3}}).devices["cpu"]
    errors, warnings = collected_problems({}, [device])
    assert not errors and "no collected test declares suite 'lidar'" in warnings[0]
    errors, warnings = collected_problems({"lidar": {"min_frames_per_s": "frames/s"}}, [device])
    assert not errors and not warnings
    assert device.claim("lidar", "min_frames_per_s", "m").definition.unit == "frames/s"
    errors, _ = collected_problems({"radar": {"min_fps": "fps"}}, [parse({"radar": {"min_fsp": 3}}).devices["cpu"]])
    assert "declares no claim 'min_fsp' (did you mean 'min_fps'?)" in errors[0]
    errors, _ = collected_problems({"sonar": {"fps": "x"}}, [])
    assert "must start with min_ or max_" in errors[0]


def test_a_near_miss_of_a_built_in_suite_is_a_typo():
    with pytest.raises(ConfigError, match=r"claims.througput: unknown suite \(did you mean 'throughput'\?\)"):
        parse({"througput": {"max_p90_latency_ms": 3}})


# --- claims that compare devices ------------------------------------------------------------------

def energy_record(device: str, model: str, per_usd: float, created: float, ci=None) -> Record:
    rec = Record("energy", "t", {"name": device}, {}, {"name": model}, {"name": "offline"}, created=created)
    rec.metrics["inferences_per_s_per_usd"] = {"value": per_usd, "unit": "inferences/s/USD", "method": "derived"}
    if ci:
        rec.metrics["inferences_per_s_per_usd"].update(ci95=ci, rounds=3)
    return rec


def test_latest_metric_prefers_a_figure_with_an_interval_then_the_newest():
    recs = [energy_record("cloud", "m", 1.0, 10, ci=[0.9, 1.1]), energy_record("cloud", "m", 2.0, 20),
            energy_record("cloud", "other", 9.0, 30), energy_record("tpu", "m", 9.0, 40)]
    found = latest_metric(recs, "cloud", "m", "inferences_per_s_per_usd")
    assert found.value == 1.0 and found.estimate.interval == (0.9, 1.1)
    assert latest_metric(recs[1:2], "cloud", "m", "inferences_per_s_per_usd").estimate.high == math.inf
    assert latest_metric(recs, "gpu", "m", "inferences_per_s_per_usd") is None


def test_ratio_not_measured_side_by_side_spans_both_intervals():
    r = ratio_of(est(10, 9, 11), est(2, 1.8, 2.2), "x")
    assert r.value == pytest.approx(5) and r.low == pytest.approx(9 / 2.2) and r.high == pytest.approx(11 / 1.8)


def test_ratio_claim_met_missed_and_unchecked():
    s = spec("min_ips_per_usd_ratio", 10.0, suite="energy", against="cloud")
    cloud = Found(Estimate(0.25, 0.24, 0.26, "t", 3), "abc", "this run")
    ok = judge_ratio(s, "tpu", "m", est(5, 4.9, 5.1), cloud, "inferences_per_s_per_usd")
    assert ok.verdict == MET and ok.observed == pytest.approx(20.0) and "against cloud" in ok.message
    assert judge_ratio(s, "tpu", "m", est(1, 0.9, 1.1), cloud, "inferences_per_s_per_usd").verdict == MISSED
    one_window = Found(Estimate(0.25, -math.inf, math.inf, "t", 1), "abc", "run 1")
    assert judge_ratio(s, "tpu", "m", est(5, 4.9, 5.1), one_window, "x").verdict == INCONCLUSIVE
    none = judge_ratio(s, "tpu", "m", est(5, 4, 6), None, "inferences_per_s_per_usd")
    assert none.verdict == UNCHECKED and "no inferences_per_s_per_usd result for device 'cloud'" in none.message
    unnamed = judge_ratio(spec("min_ips_per_usd_ratio", 10.0, suite="energy"), "tpu", "m", est(5, 4, 6), None, "x")
    assert unnamed.verdict == UNCHECKED and "against" in unnamed.message
