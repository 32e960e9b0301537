"""The timing loop, driven by a fake clock so counts and figures are exact."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeai.backends.base import TensorSpec
from pytest_edgeai.errors import ConfigError, MeasurementError, ModelError
from pytest_edgeai.measure import scenarios
from pytest_edgeai.measure.inputs import concrete_shape, make_feeds
from pytest_edgeai.measure.profiles import Profile, get_profile


class FakeClock:
    """perf_counter_ns that advances only when the fake session runs."""

    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        return self.now


class FakeSession:
    def __init__(self, clock: FakeClock, costs_ns):
        self.clock = clock
        self.costs = iter(costs_ns)
        self.calls = 0
        self.inputs = [TensorSpec("input", ("N", 3), "float32")]
        self.outputs = []

    def run(self, feeds):
        self.calls += 1
        self.clock.now += next(self.costs)
        return []


PROFILE = Profile("test", warmup_count=3, warmup_s=0.0, min_duration_s=1.0, min_count=5, timeout_s=10)


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(scenarios.time, "perf_counter_ns", c)
    return c


def test_warmup_and_first_inference_are_excluded(clock):
    costs = [500_000_000] + [1_000_000] * 3 + [100_000_000] * 20  # first, warm-up, timed
    session = FakeSession(clock, costs)
    m = scenarios.measure(session, {}, "offline", 4, PROFILE)
    assert m.first_inference_ns == 500_000_000
    assert m.warmup_count == 3
    assert len(m.samples_ns) == 10  # 1 s at 100 ms a query
    assert set(m.samples_ns) == {100_000_000}
    assert m.throughput_ips == pytest.approx(40.0)  # 4 items every 100 ms
    assert session.calls == 1 + 3 + 10


def test_minimum_count_wins_over_duration(clock):
    session = FakeSession(clock, [1] + [1] * 3 + [400_000_000] * 10)
    m = scenarios.measure(session, {}, "single_stream", 1, PROFILE)
    assert len(m.samples_ns) == 5  # 2 s already past the 1 s minimum, but 5 queries are required


def test_unstable_latency_is_flagged(clock):
    session = FakeSession(clock, [1] * 4 + [10_000_000, 90_000_000] * 50)
    m = scenarios.measure(session, {}, "single_stream", 1, PROFILE)
    assert any("coefficient of variation" in w for w in m.warnings)
    steady = scenarios.measure(FakeSession(clock, [1] * 4 + [50_000_000] * 100), {}, "single_stream", 1, PROFILE)
    assert steady.warnings == []


def test_progress_is_reported_while_a_long_measurement_runs(clock):
    seen = []
    session = FakeSession(clock, [1] * 4 + [100_000_000] * 30)
    scenarios.measure(session, {}, "offline", 2, PROFILE, progress=seen.append)
    assert seen and seen[0].elapsed_s >= 0.5
    assert seen[-1].items_per_s == pytest.approx(20.0)


def test_metrics_say_how_they_were_obtained(clock):
    m = scenarios.measure(FakeSession(clock, [1] * 4 + [100_000_000] * 20), {}, "offline", 1, PROFILE)
    metrics = m.metrics()
    assert metrics["throughput_ips"]["unit"] == "inferences/s"
    assert all(entry["method"] == "measured" and entry["source"] for entry in metrics.values())
    assert metrics["latency_p90_ms"]["value"] == pytest.approx(100.0)


def test_single_stream_refuses_batches(clock):
    with pytest.raises(MeasurementError, match="batch must be 1"):
        scenarios.measure(FakeSession(clock, [1] * 10), {}, "single_stream", 2, PROFILE)


def test_feeds_follow_the_specs_and_are_deterministic():
    specs = [TensorSpec("x", ("N", 3, 4), "float32"), TensorSpec("ids", (None, 5), "int64")]
    a, b = make_feeds(specs, 2, seed=7), make_feeds(specs, 2, seed=7)
    assert a["x"].shape == (2, 3, 4) and a["x"].dtype == np.float32
    assert a["ids"].shape == (2, 5) and a["ids"].dtype == np.int64
    assert np.array_equal(a["x"], b["x"])


def test_unfeedable_inputs_say_how_to_fix_them():
    with pytest.raises(ModelError, match="unknown dimension 2.*input_shapes"):
        concrete_shape(TensorSpec("x", ("N", 3, "width"), "float32"), 1)
    with pytest.raises(ModelError, match="static batch of 1"):
        concrete_shape(TensorSpec("x", (1, 3), "float32"), 8)
    assert concrete_shape(TensorSpec("x", ("N", 3, "w"), "float32"), 4, {"x": [1, 3, 9]}) == (4, 3, 9)


def test_profiles_are_ordered_and_unknown_ones_refused():
    quick, standard, full = (get_profile(n) for n in ("quick", "standard", "full"))
    assert quick.min_duration_s < standard.min_duration_s < full.min_duration_s
    assert full.min_duration_s >= 60 and full.min_count >= 1024
    with pytest.raises(ConfigError, match="did you mean 'quick'"):
        get_profile("quik")


def test_window_brackets_exactly_the_timed_loop(clock):
    events = []
    session = FakeSession(clock, [7] + [1] * 3 + [100_000_000] * 20)

    def window(edge):
        events.append((edge, session.calls, clock.now))

    m = scenarios.measure(session, {}, "offline", 1, PROFILE, window=window)
    (idle, calls_at_idle, _), (start, calls_at_start, t_start), (stop, calls_at_stop, t_stop) = events
    assert (idle, start, stop) == ("idle", "start", "stop")
    assert calls_at_idle == 1 + 3  # the idle baseline: after the warm-up, in the state the timed loop starts from
    assert calls_at_start == 1 + 3  # after the first call and the warm-up
    assert calls_at_stop == 1 + 3 + len(m.samples_ns)
    assert t_stop - t_start == m.wall_ns


def test_pooled_windows_throughput_interval_says_it_pools_windows_not_one(clock):
    """measure_windows pools separate windows: the interval's basis must say so, not 'one window'."""
    rng = np.random.default_rng(0)
    costs = [1] * 4 + [int(c) for c in rng.integers(90_000_000, 110_000_000, 40)]
    m = scenarios.measure_windows(FakeSession(clock, costs * 2), {}, "offline", 1, PROFILE, 2)
    basis = m.metrics()["throughput_ips"]["ci95_basis"]
    assert "2 windows' queries pooled" in basis and "one window" not in basis
    single = scenarios.measure(FakeSession(clock, costs), {}, "offline", 1, PROFILE)
    assert "one window" in single.metrics()["throughput_ips"]["ci95_basis"]
