"""MLPerf LoadGen over a tiny SUT: every scenario yields a verdict and a summary; the Server search."""

from __future__ import annotations

import time

import pytest

from pytest_edgeai.concurrency.loadgen import (
    SCENARIOS,
    LoadGenSettings,
    calibrate_latency,
    parse_summary,
    run_loadgen,
    search_server_qps,
)
from pytest_edgeai.errors import MeasurementError

pytest.importorskip("mlperf_loadgen")

SAMPLES = [{} for _ in range(4)]


class SleepySession:
    inputs: list = []
    outputs: list = []

    def __init__(self, delay_s: float = 0.001, fail: bool = False):
        self.delay_s, self.fail, self.calls = delay_s, fail, 0

    def run(self, feeds):
        self.calls += 1
        if self.fail:
            raise RuntimeError("device fell off the bus")
        time.sleep(self.delay_s)
        return []


def _settings(scenario: str, **kw) -> LoadGenSettings:
    return LoadGenSettings(scenario, min_duration_s=0.3, min_query_count=8, expected_latency_s=0.001,
                           max_duration_s=10.0, samples_per_query=4, **kw)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_scenario_gives_a_verdict_and_a_summary(scenario, tmp_path):
    session = SleepySession()
    extra = {"server_target_qps": 100.0, "server_latency_bound_s": 0.05} if scenario == "Server" else {}
    result = run_loadgen(session, SAMPLES, _settings(scenario, **extra), tmp_path / scenario)
    assert result.verdict in ("VALID", "INVALID")
    assert f"Scenario : {scenario}" in result.summary and (tmp_path / scenario / "mlperf_log_summary.txt").is_file()
    assert session.calls >= 8
    metrics = result.metrics()
    if scenario == "MultiStream":
        assert result.fields["Scenario"] == "MultiStream" and metrics["latency_p99_ms"]["value"] > 0
    else:
        assert metrics["throughput_ips"]["value"] > 0
    assert ("latency_p90_ms" in metrics) == (scenario != "Offline")
    assert result.to_dict()["verdict"] == result.verdict


def test_the_server_search_tries_the_top_then_bisects_below_it(tmp_path):
    base = _settings("Server", server_latency_bound_s=0.05)
    search = search_server_qps(SleepySession(), SAMPLES, base, low_qps=20.0, high_qps=4000.0, steps=3, outdir=tmp_path)
    rates = [r.settings.server_target_qps for r in search.tries]
    assert rates[0] == pytest.approx(4000.0)
    if search.met(search.tries[0]):  # the range was too narrow: nothing above it to find
        assert len(rates) == 1 and search.best is search.tries[0]
    else:  # each later try halves the interval, moving up after a success and down after a miss
        assert rates[1] == pytest.approx(2010.0) and len(rates) == 3
        assert rates[2] == pytest.approx(3005.0 if search.met(search.tries[1]) else 1015.0)
    assert len(search.rows()) == len(rates) and all("p99_ms" in row for row in search.rows())
    if search.best is not None:
        assert search.met(search.best)


def test_a_failing_session_is_a_measurement_error_not_a_hang(tmp_path):
    with pytest.raises(MeasurementError, match="device fell off the bus"):
        run_loadgen(SleepySession(fail=True), SAMPLES, _settings("SingleStream"), tmp_path)


def test_server_without_a_target_is_refused(tmp_path):
    with pytest.raises(MeasurementError, match="target QPS"):
        run_loadgen(SleepySession(), SAMPLES, _settings("Server"), tmp_path)


def test_the_summary_parser_reads_verdict_and_figures():
    verdict, fields = parse_summary("Scenario : Offline\nSamples per second: 187263\nResult is : INVALID\n"
                                    "  Min duration satisfied : NO\n90.00 percentile latency (ns)   : 1468521\n")
    assert verdict == "INVALID"
    assert fields["Samples per second"] == "187263" and fields["Min duration satisfied"] == "NO"
    assert fields["90.00 percentile latency (ns)"] == "1468521"
    assert parse_summary("garbage")[0] == "UNKNOWN"


def test_calibration_is_the_median_of_timed_runs():
    session = SleepySession(delay_s=0.0)
    assert calibrate_latency(session, {}, runs=5) >= 0.0
    assert session.calls == 6  # one untimed, five timed
