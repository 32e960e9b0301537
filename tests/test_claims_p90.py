"""The p90 a latency claim is judged on: one window's order-statistic interval, and once a claim has re-measured
more windows, an interval that also holds the spread between them (queries of one window are not independent)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pytest_edgeai.measure.rounds import mean_estimate
from pytest_edgeai.measure.stats import quantile_ci

SUITE = Path(__file__).resolve().parents[1] / "suites" / "test_throughput.py"


def suite_p90():
    spec = importlib.util.spec_from_file_location("throughput_suite_under_test", SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._p90


def window(ms: float, n: int = 2000, seed: int = 0) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    return SimpleNamespace(samples={"latency_ns": list((ms * 1e6 * (1 + 0.01 * rng.standard_normal(n))).astype(int))})


def test_one_window_is_judged_on_its_order_statistics():
    p90 = suite_p90()
    one = p90([window(1.0)])
    ms = np.asarray(window(1.0).samples["latency_ns"], dtype=np.float64) / 1e6
    assert (one.low, one.high) == quantile_ci(ms, 0.9) and one.rounds == 1 and "widened" not in one.basis


def test_windows_that_disagree_widen_the_interval_to_their_spread():
    p90 = suite_p90()
    windows = [window(1.0, seed=1), window(1.6, seed=2), window(1.2, seed=3)]
    est = p90(windows)
    pooled = np.concatenate([np.asarray(w.samples["latency_ns"], dtype=np.float64) / 1e6 for w in windows])
    within = quantile_ci(pooled, 0.9)
    between = mean_estimate([float(np.percentile(np.asarray(w.samples["latency_ns"]) / 1e6, 90)) for w in windows],
                            "p90")
    # thousands of queries a window make the order-statistic interval far narrower than the windows disagree
    assert within[1] - within[0] < (between.high - between.low) / 10
    assert est.low == min(within[0], between.low) and est.high == max(within[1], between.high)
    assert est.low <= est.value <= est.high and "t-interval" in est.basis and est.rounds == 3
