"""Statistics of latency samples: percentiles, bootstrap intervals, throughput interval."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeai.measure.stats import bootstrap_ci, mean_ci, median_ci, quantile_ci, summarize, throughput_ci


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
    large = rng.lognormal(1.0, 0.3, 50_000)
    lo_s, hi_s = median_ci(small)
    lo_l, hi_l = median_ci(large)
    assert lo_s <= np.median(small) <= hi_s
    assert lo_l <= np.median(large) <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s)


def test_median_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(3)
    true_median = np.exp(1.0)  # lognormal(1, 0.5)
    hits = sum(lo <= true_median <= hi for lo, hi in (median_ci(rng.lognormal(1.0, 0.5, 40)) for _ in range(400)))
    assert 0.93 <= hits / 400 <= 0.995  # exact order-statistic intervals are slightly conservative


def test_mean_interval_switches_to_the_t_interval_for_long_runs_and_agrees_with_the_bootstrap():
    rng = np.random.default_rng(4)
    x = rng.lognormal(1.0, 0.3, 5_000)
    boot = mean_ci(x)
    t_lo, t_hi = mean_ci(np.concatenate([x, x[:1]]))  # 5001 values: the t-interval
    assert boot[0] < x.mean() < boot[1] and t_lo < x.mean() < t_hi
    assert abs((t_hi - t_lo) - (boot[1] - boot[0])) < 0.15 * (boot[1] - boot[0])


def test_constant_samples_give_a_degenerate_interval():
    assert bootstrap_ci(np.full(10, 3.0), np.mean) == (3.0, 3.0)
    s = summarize([5_000_000] * 6)
    assert s.median_ci95_ms == (5.0, 5.0) and s.cv == 0.0


@pytest.mark.parametrize("n", [1, 2, 5])
def test_the_median_interval_is_unbounded_where_no_ranks_reach_the_confidence(n):
    """[min, max] of 5 samples holds the median with probability 1 - 2 / 2**5 = 93.75%: claiming 95% on it
    would judge a claim on an interval narrower than its evidence."""
    assert median_ci(np.arange(1.0, n + 1)) == (float("-inf"), float("inf"))
    assert median_ci(np.arange(1.0, 7.0)) == (1.0, 6.0)  # 6 samples: 1 - 2 / 64 = 96.9% >= 95%


def test_the_median_interval_covers_as_often_as_it_claims_at_every_small_n():
    """Exact coverage from the binomial: the ranks the interval is cut at hold the median with P >= 95%."""
    from scipy import stats

    for n in range(1, 40):
        x = np.arange(1.0, n + 1)
        lo, hi = median_ci(x)
        j = int(np.searchsorted(x, lo)) + 1 if np.isfinite(lo) else 0  # 1-based rank of the low end (0: none)
        k = int(np.searchsorted(x, hi)) + 1 if np.isfinite(hi) else n + 1
        coverage = stats.binom.cdf(k - 1, n, 0.5) - stats.binom.cdf(j - 1, n, 0.5)
        assert coverage >= 0.95, (n, lo, hi, coverage)


def test_throughput_interval_contains_batch_over_mean_time():
    rng = np.random.default_rng(2)
    samples = (rng.normal(10e6, 1e6, 400)).astype(np.int64)  # ~10 ms a query
    point = 4 / (samples.mean() / 1e9)
    lo, hi = throughput_ci(samples, point)
    assert lo < point < hi
    assert 380 < lo and hi < 420


def test_throughput_interval_holds_the_figure_when_the_loop_costs_time():
    """items / wall time includes the loop's own time between queries; the interval is around it."""
    samples = np.random.default_rng(3).normal(4_000, 300, 5_000).astype(np.int64)  # 4 us queries
    wall_s = samples.size * 4.3e-6  # 0.3 us a query outside the timed calls
    point = samples.size / wall_s
    lo, hi = throughput_ci(samples, point)
    assert lo < point < hi
    assert hi < 1 / 4.0e-6  # batch / mean latency would lie above this interval


def test_throughput_interval_with_requests_in_flight_is_around_the_figure():
    """Four requests in flight, each 10 ms: 400/s, and the interval is about 400, not about 100."""
    samples = np.random.default_rng(4).normal(10e6, 1e6, 400).astype(np.int64)
    lo, hi = throughput_ci(samples, 400.0)
    assert 380 < lo < 400 < hi < 420


def test_quantile_interval_from_order_statistics():
    x = np.arange(1, 1001, dtype=float)
    lo, hi = quantile_ci(x, 0.9)
    assert lo < 900 < hi and hi - lo < 60
    assert quantile_ci(np.arange(10.0), 0.9)[1] == float("inf")  # 10 queries cannot bound p90 above


def test_empty_samples_are_refused():
    with pytest.raises(ValueError):
        summarize([])
