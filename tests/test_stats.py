"""Statistics of latency samples: percentiles, bootstrap intervals, throughput interval."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeai.measure.stats import bootstrap_ci, summarize, throughput_ci


def test_summary_of_known_samples():
    samples_ns = [int(ms * 1e6) for ms in range(1, 101)]  # 1..100 ms
    s = summarize(samples_ns)
    assert s.count == 100
    assert s.min_ms == pytest.approx(1.0) and s.max_ms == pytest.approx(100.0)
    assert s.median_ms == pytest.approx(50.5)
    assert s.p90_ms == pytest.approx(90.1)
    assert s.p99_ms == pytest.approx(99.01)
    assert s.mean_ms == pytest.approx(50.5)
    assert s.cv == pytest.approx(np.std(np.arange(1, 101), ddof=1) / 50.5)


def test_median_interval_brackets_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(1)
    small = rng.lognormal(1.0, 0.3, 50)
    large = rng.lognormal(1.0, 0.3, 5000)
    lo_s, hi_s = bootstrap_ci(small, lambda x, axis=-1: np.median(x, axis=axis))
    lo_l, hi_l = bootstrap_ci(large, lambda x, axis=-1: np.median(x, axis=axis))
    assert lo_s <= np.median(small) <= hi_s
    assert lo_l <= np.median(large) <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s)


def test_constant_samples_give_a_degenerate_interval():
    assert bootstrap_ci(np.full(10, 3.0), np.mean) == (3.0, 3.0)
    s = summarize([5_000_000] * 4)
    assert s.median_ci95_ms == (5.0, 5.0) and s.cv == 0.0


def test_throughput_interval_contains_batch_over_mean_time():
    rng = np.random.default_rng(2)
    samples = (rng.normal(10e6, 1e6, 400)).astype(np.int64)  # ~10 ms a query
    lo, hi = throughput_ci(samples, batch=4)
    point = 4 / (samples.mean() / 1e9)
    assert lo < point < hi
    assert 380 < lo and hi < 420


def test_empty_samples_are_refused():
    with pytest.raises(ValueError):
        summarize([])
