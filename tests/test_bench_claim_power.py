"""benchmarks/bench_claim_power.py, on fakes whose speed is set exactly: a trial judges each claim through the
suites' path (a configuration far inside a claim is met, one far beyond it missed, an inconclusive one re-measured),
and the tallies, bounds and truths it prints are right for known counts. No timing is asserted."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from scipy import stats

from pytest_edgeai.claims import INCONCLUSIVE, MET, MISSED
from pytest_edgeai.measure.profiles import get_profile
from pytest_edgeai.measure.rounds import Estimate
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.record import Record

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
QUICK = get_profile("quick")
# the quick profile's rounds and re-measuring, with windows a few tens of milliseconds long
TINY = replace(QUICK, warmup_count=1, warmup_s=0.0, min_duration_s=0.15, min_count=10)


@pytest.fixture
def bench(monkeypatch):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # the import pins them: undone after
        monkeypatch.setenv(var, "1")
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports its sibling bench_verdict_power, as when run
    spec = importlib.util.spec_from_file_location("bench_claim_power", BENCHMARKS / "bench_claim_power.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses resolve their annotations there
    spec.loader.exec_module(module)
    return module


class Sleeper:
    """A backend whose query sleeps ``work`` milliseconds: timed by the real loop, its speed known to a factor."""

    def __init__(self, work: int):
        self.seconds = work * 1e-3

    def run(self, feeds):
        time.sleep(self.seconds)
        return {}


def test_far_inside_is_met_and_far_beyond_is_missed_through_the_real_loop(bench):
    limits = {bench.THROUGHPUT: 300.0, bench.P90: 5.0, bench.RATIO: 0.5}  # 1 ms queries: ~900/s, p90 ~1 ms
    inside = bench.trial(1, 1, TINY, limits, make=Sleeper)
    beyond = bench.trial(1, 20, TINY, limits, make=Sleeper)  # 20 ms queries: ~50/s, p90 ~20 ms, ratio ~0.05
    for claim in (bench.THROUGHPUT, bench.P90, bench.RATIO):
        assert inside[claim][0].verdict == MET, inside[claim][0].message
        assert beyond[claim][0].verdict == MISSED, beyond[claim][0].message
    assert beyond[bench.RATIO][0].observed < 0.2 and beyond[bench.THROUGHPUT][0].observed < 100
    assert inside[bench.THROUGHPUT][0].rounds == QUICK.rounds and inside[bench.P90][0].rounds == 1


class Scripted:
    """A session whose windows are given in order: a throughput, or (throughput, queries); each query of a window
    takes 1 / its throughput (200 queries unless given)."""

    def __init__(self, figures):
        self.figures = iter(figures)
        self.windows = 0


def scripted_window(session, scenario, profile):
    figure = next(session.figures)
    ips, queries = figure if isinstance(figure, tuple) else (figure, 200)
    session.windows += 1
    r = Record(suite="throughput", test_id="t", device=synthetic.device(), backend={}, model={"name": "fake"},
               scenario={"name": scenario, "batch": 1})
    r.metrics["throughput_ips"] = {"value": ips, "unit": "inferences/s"}
    r.samples["latency_ns"] = [1e9 / ips] * queries
    return r


def test_an_inconclusive_claim_measures_more_rounds_or_windows_of_the_configuration_it_judges(bench, monkeypatch):
    monkeypatch.setattr(bench, "window", scripted_window)
    slowed = [100.0, 120.0, 100.0, 100.0, (100.0, 20), (100.0, 20)]  # 4 offline rounds, 2 single-stream windows
    sessions = {1: Scripted(itertools.repeat(200.0)), 2: Scripted(slowed)}
    limits = {bench.THROUGHPUT: 85.0, bench.P90: 100.0, bench.RATIO: 0.01}
    out = bench.trial(1, 2, QUICK, limits, make=sessions.__getitem__)
    thr = out[bench.THROUGHPUT][0]
    # three rounds (100, 120, 100) straddle 85; a fourth (100) settles it: met on four rounds
    assert thr.verdict == MET and thr.rounds == QUICK.max_rounds == 4 and thr.interval[0] >= 85.0
    assert out[bench.RATIO][0].rounds == 4 and out[bench.RATIO][0].observed == pytest.approx(
        (100 * 120 * 100 * 100) ** 0.25 / 200)  # the slowed arm over A, round by round
    # p90 of 20 queries has no upper bound (inconclusive); with a second window of 20, [10, 10] ms: met
    p90 = out[bench.P90][0]
    assert p90.verdict == MET and p90.rounds == 2 and p90.observed == pytest.approx(10.0)
    assert sessions[2].windows == 4 + 2


def test_thresholds_follow_the_devices_toml_rule_unless_given(bench):
    cal = bench.Calibration(20, Estimate(1000.0, 750.0, 1300.0, "t-interval", 3), Estimate(2.0, 1.9, 2.1, "os", 1), 1.0)
    assert bench.thresholds(cal) == {bench.THROUGHPUT: 500.0, bench.P90: 4.0, bench.RATIO: 0.75}
    assert bench.thresholds(cal, floor=7.0, p90_bound=9.0, ratio_floor=0.5) == {
        bench.THROUGHPUT: 7.0, bench.P90: 9.0, bench.RATIO: 0.5}


def test_truth_is_read_from_the_claims_direction(bench):
    assert bench.truth(bench.THROUGHPUT, 600.0, 500.0) == bench.INSIDE
    assert bench.truth(bench.THROUGHPUT, 400.0, 500.0) == bench.OUTSIDE
    assert bench.truth(bench.P90, 3.0, 4.0) == bench.INSIDE and bench.truth(bench.P90, 5.0, 4.0) == bench.OUTSIDE
    assert bench.truth(bench.RATIO, 1 / 1.5, 0.75) == bench.OUTSIDE
    assert bench.truth(bench.P90, 4.0, 4.0) == bench.BOUNDARY


def test_rates_carry_one_sided_clopper_pearson_bounds(bench):
    assert bench.rate(3, 4) == (f"3/4 = 75.0% [>= {stats.beta.ppf(0.05, 3, 2):.1%}, "
                                f"<= {stats.beta.ppf(0.95, 4, 1):.1%}]")
    assert bench.rate(0, 20) == f"0/20 = 0.0% [>= 0.0%, <= {stats.beta.ppf(0.95, 1, 20):.1%}]"
    assert bench.rate(5, 5).endswith("<= 100.0%]")


def tally(bench, **counts):
    t = bench.Tally()
    for verdict, n in counts.items():
        for _ in range(n):
            t.verdicts[{"met": MET, "inc": INCONCLUSIVE, "missed": MISSED}[verdict]] += 1
            t.rounds.append(3)
            t.seconds.append(1.0)
            t.observed.append(1.0)
    return t


def test_the_report_counts_errors_on_the_side_the_calibration_puts_each_factor(bench, capsys):
    cal = bench.Calibration(20, Estimate(1000.0, 750.0, 1300.0, "t", 3), Estimate(2.0, 1.9, 2.1, "os", 1), 1.0)
    limits = bench.thresholds(cal)  # floor 500/s: truly met below a factor of 2
    by_factor = {1.0: tally(bench, met=3, missed=1), 2.0: tally(bench, met=2, missed=2),
                 3.0: tally(bench, met=1, inc=2, missed=1)}
    bench.report({bench.THROUGHPUT: by_factor}, cal, limits, [1.0, 2.0, 3.0])
    out = capsys.readouterr().out
    assert "true 500 inferences/s, on the boundary" in out and "true 333.3 inferences/s, outside" in out
    # only factor 1 is truly inside, only factor 3 truly outside: factor 2's verdicts count as neither error
    assert f"false alarm (missed) {bench.rate(1, 4)}; strict (missed or inconclusive) {bench.rate(1, 4)}" in out
    assert f"false pass (met) {bench.rate(1, 4)}; detected (missed) {bench.rate(1, 4)}" in out
    assert f"strict (missed or inconclusive) {bench.rate(3, 4)}" in out
    assert f"met {bench.rate(3, 4)}; inconclusive {bench.rate(0, 4)}; missed {bench.rate(1, 4)}" in out


def test_each_pair_of_trials_runs_the_factors_forward_then_reversed(bench):
    orders = bench.orders([1.0, 1.2, 1.5, 2.0, 3.0], 4, seed=7)
    assert all(sorted(o) == [1.0, 1.2, 1.5, 2.0, 3.0] for o in orders)
    assert orders[1] == orders[0][::-1] and orders[3] == orders[2][::-1]
    assert orders == bench.orders([1.0, 1.2, 1.5, 2.0, 3.0], 4, seed=7)
