"""Interleaved rounds: the order, a drift that cancels in the per-round ratios, intervals from rounds,
the best of several chosen with its correction, and a round's share of the profile."""

from __future__ import annotations

import math

import pytest

from pytest_edgeai.measure.profiles import PROFILES, over_budget, plan_over_budget
from pytest_edgeai.measure.rounds import (
    METER_UPDATES,
    Interleaved,
    best_of,
    interleave,
    mean_estimate,
    metered_round_profile,
    ratio_estimate,
    round_order,
    round_profile,
)


def test_rounds_alternate_their_order():
    assert [round_order(2, i) for i in range(4)] == [[0, 1], [1, 0], [0, 1], [1, 0]]
    seen = []
    interleave([lambda r: seen.append(("A", r)), lambda r: seen.append(("B", r))], 3)
    assert seen == [("A", 0), ("B", 0), ("B", 1), ("A", 1), ("A", 2), ("B", 2)]


def test_more_rounds_extend_the_same_series():
    series = Interleaved([lambda r: r, lambda r: 10 * r]).more(2)
    series.more(1)
    assert series.results == [[0, 1, 2], [0, 10, 20]] and series.rounds == 3


def test_a_drifting_machine_cancels_in_the_per_round_ratios():
    """B is 2x A's speed; the machine slows by half over the run. One after the other reads 1.0x;
    the interleaved rounds' ratio reads 2x with a narrow interval."""
    speed = iter([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4])  # the machine, one step a measurement
    series = interleave([lambda r: 100 * next(speed), lambda r: 200 * next(speed)], 4)
    est = ratio_estimate(series.results[1], series.results[0], "B / A")
    assert est.low < 2.0 < est.high and est.low > 1.5 and est.rounds == 4
    sequential = (200 * 0.5) / (100 * 1.0)  # A measured first, B after the drift
    assert sequential == pytest.approx(1.0)


def test_one_round_has_no_interval():
    assert ratio_estimate([2.0], [1.0], "x").high == math.inf
    one = mean_estimate([5.0], "x")
    assert one.low == -math.inf and one.high == math.inf and one.rounds == 1
    assert math.isnan(mean_estimate([], "x").value)


def test_rates_get_a_positive_interval_from_their_logs():
    est = mean_estimate([10.0, 40.0, 20.0], "throughput")
    assert est.value == pytest.approx(20.0) and 0 < est.low < 20.0 < est.high
    assert "geometric mean" in est.basis
    signed = mean_estimate([-1.0, 1.0, 3.0], "x")
    assert signed.value == pytest.approx(1.0) and signed.low < 0


def test_the_best_of_several_is_corrected_for_being_chosen():
    rounds = {"b2": ([1.1, 1.3, 1.2], [1.0, 1.0, 1.0]), "b4": ([1.5, 1.0, 1.3], [1.0, 1.0, 1.0])}
    candidates = {k: (lambda level, v=v: ratio_estimate(v[0], v[1], "x", level)) for k, v in rounds.items()}
    chosen, est = best_of(candidates, "speed-up")
    alone = ratio_estimate(*rounds[chosen], "x")
    assert chosen == "b4" and est.value == pytest.approx(alone.value)
    wider = ratio_estimate(*rounds["b2"], "x", 1 - 0.05 / 2)
    assert est.low == pytest.approx(max(wider.low, ratio_estimate(*rounds["b4"], "x", 1 - 0.05 / 2).low))
    assert est.high > alone.high  # chosen after the fact, the best is known less tightly than one alone
    assert "Bonferroni" in est.basis


def test_a_round_is_a_share_of_the_profile_window():
    standard = PROFILES["standard"]
    one = round_profile(standard)
    assert one.min_duration_s == pytest.approx(standard.min_duration_s / standard.rounds)
    assert one.min_count == math.ceil(standard.min_count / standard.rounds)
    # the warm-up count is shared (at least one query), its time floor is not
    assert one.warmup_count == math.ceil(standard.warmup_count / standard.rounds) < standard.warmup_count
    assert one.warmup_s == standard.warmup_s
    assert round_profile(PROFILES["quick"]).warmup_count == 1


def test_a_metered_round_is_short_only_for_a_sensor_fast_enough_for_it():
    standard = PROFILES["standard"]
    share = round_profile(standard)
    assert metered_round_profile(standard, [0.001]) == share  # RAPL's counter: a millisecond
    assert metered_round_profile(standard, [0.001, 0.5]) == standard  # a 2 Hz meter on the other arm
    assert metered_round_profile(standard, [None]) == standard  # not read yet, or no meter
    assert metered_round_profile(standard, []) == standard
    slowest = share.min_duration_s / METER_UPDATES
    assert metered_round_profile(standard, [slowest]) == share
    assert metered_round_profile(standard, [slowest * 1.01]) == standard
    assert standard.rounds <= standard.max_rounds and PROFILES["full"].max_rounds > standard.max_rounds


def test_a_batch_whose_query_would_outlast_the_profile_is_left_to_a_longer_one():
    standard, full = PROFILES["standard"], PROFILES["full"]
    # Inception-v4 on 2 cores: about 0.17 s a batch-1 query
    later = over_budget(standard, 0.17, [1, 2, 4, 8], "record abc")
    assert sorted(later) == [4, 8]
    assert "about 0.68 s (4 x the 170 ms of batch 1 in record abc)" in later[4]
    assert "--edgeai-profile full" in later[4] and "0.5 s a query" in later[4]
    assert over_budget(full, 0.17, [1, 2, 4, 8], "x") == {}  # full sweeps every batch
    assert over_budget(standard, 0.006, [1, 2, 4, 8], "x") == {}  # MobileNetV2: 48 ms at batch 8
    assert over_budget(standard, 0.0, [8], "x") == {}  # no figure: nothing is predicted
    assert list(over_budget(PROFILES["quick"], 0.17, [1, 2], "x")) == [2]


def test_a_split_plan_whose_execution_would_outlast_the_profile_is_left_to_a_longer_one():
    standard, full = PROFILES["standard"], PROFILES["full"]
    # the quiet quick start's plans at 16 inferences (1 warm-up, 5 calibration, 10 measured): SSD-MobileNet V1's
    # 1.94 s a plan is left to full; Inception-v4's 0.44 s and SSD-MobileNet V2's 0.59 s run
    why = plan_over_budget(standard, 1.942, 16)
    assert why is not None and "about 31 s (16 inferences" in why and "1942 ms" in why
    assert "standard profile's 20 s" in why and "--edgeai-profile full" in why
    assert plan_over_budget(standard, 0.441, 16) is None and plan_over_budget(standard, 0.585, 16) is None
    assert plan_over_budget(full, 1.942, 1040) is None  # full executes every plan
    assert plan_over_budget(PROFILES["quick"], 0.9, 12) is not None  # quick's 10 s
