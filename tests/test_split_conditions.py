"""Plans under changing conditions: where the best plan changes, and how fixed vs re-planned is judged."""

from __future__ import annotations

import contextlib
import os
from types import SimpleNamespace

import pytest
from test_split_execute import two_input_feeds, two_input_model

from pytest_edgeai.split import conditions
from pytest_edgeai.split.conditions import Calibrate, Comparison, Condition, sweep
from pytest_edgeai.split.constraints import KeepInputOnDevice, Pin
from pytest_edgeai.split.cuts import GraphCuts
from pytest_edgeai.split.network import LinkProfile
from pytest_edgeai.split.planner import evaluate

BLOCK_S = [0.001, 0.010, 0.010, 0.001]  # per block, unloaded
BYTES = [32768.0, 32768.0, 32768.0, 8192.0, 16384.0]
CPUS = {"edge": [max(os.sched_getaffinity(0))], "cloud": [min(os.sched_getaffinity(0))]}


def slowed(graph, boundaries, feed, cpus, load, repeats, workers, load_cpus):
    """A stand-in profile: a CPU shared with a busy loop runs a block 1 / (1 - load / 2) slower, another not."""
    return [s / (1 - load / 2) for s in BLOCK_S] if cpus == load_cpus else list(BLOCK_S)


def test_the_sweep_reports_where_the_best_plan_changes():
    graph = GraphCuts(two_input_model())
    link = LinkProfile("edge", "cloud", 10.0, 0.0)
    planned, changes = sweep(graph, [0, 1, 2, 3, 4], two_input_feeds(1)[0], ["edge", "cloud"],
                             {("edge", "cloud"): link}, ("edge", "cloud"), "edge", {"edge": [1], "cloud": [0]},
                             rates=[1.0, 1000.0], loads=[0.0, 0.9], boundary_bytes=BYTES,
                             constraints=[KeepInputOnDevice(), Pin(3, "cloud")], profile=slowed)
    assert len(planned) == 4
    best = {(p.condition.rate_mbps, p.condition.load): p.plan for p in planned}
    # unloaded, or a slow link: the edge keeps the heavy blocks; loaded with a fast link: the cloud takes them
    assert best[(1000.0, 0.0)].cuts == best[(1.0, 0.9)].cuts == (3,)
    assert best[(1000.0, 0.9)].cuts == (1,)
    moved = {(c.before, c.after) for c in changes}
    assert (Condition(1.0, 0.9), Condition(1000.0, 0.9)) in moved      # along the rate, under load
    assert (Condition(1000.0, 0.0), Condition(1000.0, 0.9)) in moved   # along the load, on the fast link
    assert not any(c.before.load == c.after.load == 0.0 for c in changes)  # unloaded, the rate changes nothing


def test_a_comparison_is_judged_on_the_interval_of_its_rounds():
    c = Comparison(Condition(100.0, 0.9), "a", "b", 0.03, 0.02,
                   fixed_median_s=[0.030, 0.031, 0.029, 0.032, 0.030],
                   replanned_median_s=[0.020, 0.021, 0.020, 0.022, 0.019])
    assert c.ratios[0] == pytest.approx(1.5)
    assert c.ratio_ci95[0] > 1.0 and c.verdict == "re-planned faster"
    noisy = Comparison(Condition(100.0, 0.9), "a", "b", 0.03, 0.02,
                       fixed_median_s=[0.03, 0.02, 0.03, 0.02], replanned_median_s=[0.02, 0.03, 0.02, 0.03])
    assert noisy.verdict == "inconclusive"


def test_fixed_and_re_planned_alternate_their_order_round_by_round(monkeypatch):
    order: list[str] = []

    class Recorder:
        def __init__(self, name):
            self.name, self.latencies_s, self.shaping = name, [], []

        def measure(self, feeds, warmup):
            order.append(self.name)
            self.latencies_s.append(0.01)

    @contextlib.contextmanager
    def executors(graph, boundaries, plans, *args):
        yield [Recorder("fixed"), Recorder("replanned")]

    monkeypatch.setattr(conditions, "_executors", executors)
    plan = SimpleNamespace(stages=[SimpleNamespace(tier="edge", start=0, stop=1)], latency_s=0.01)
    result = conditions.compare(None, [], plan, plan, {("edge", "cloud"): LinkProfile("edge", "cloud", 10.0, 1.0)},
                                Condition(10.0, 0.0), ("edge", "cloud"), "edge", CPUS, [{}], rounds=4)
    assert order[2:] == ["fixed", "replanned", "replanned", "fixed", "fixed", "replanned", "replanned", "fixed"]
    assert len(result.fixed_median_s) == len(result.replanned_median_s) == 4


def test_a_calibrated_sweep_prices_each_candidate_and_the_fixed_plan_with_measured_message_costs():
    graph = GraphCuts(two_input_model())
    link = LinkProfile("edge", "cloud", 10.0, 0.0)
    how = Calibrate(two_input_feeds(2), top=2, network="user", timeout_s=20.0, compute_as_run=True)
    planned, _ = sweep(graph, [0, 1, 2, 3, 4], two_input_feeds(1)[0], ["edge", "cloud"], {("edge", "cloud"): link},
                       ("edge", "cloud"), "edge", CPUS, rates=[1.0, 1000.0], loads=[0.0],
                       boundary_bytes=BYTES, constraints=[KeepInputOnDevice(), Pin(3, "cloud")], profile=slowed,
                       calibrate=how)
    fixed = planned[0].plan
    for p in planned:
        assert p.uncalibrated is not None and set(p.priced) == set(p.calibrations) and len(p.priced) >= 2
        assert p.plan.latency_s == min(q.latency_s for q in p.priced.values())  # chosen on the calibrated price
        assert all(q.stages[0].message_s > 0 for q in p.priced.values())  # the edge's encode-and-send, measured
        for route, q in p.priced.items():  # each stage's compute as its calibration runs measured it
            ran = p.calibrations[route].compute_s
            assert [s.compute_s for s in q.stages if s.stop > s.start] == pytest.approx(
                [c for s, c in zip(q.stages, ran) if s.stop > s.start])
        priced_fixed = p.cost_of(fixed)
        assert priced_fixed is p.priced[" -> ".join(f"{s.tier}[{s.start}:{s.stop}]" for s in fixed.stages)]
        assert priced_fixed.latency_s != evaluate(p.problem, [(s.tier, s.start, s.stop) for s in fixed.stages]
                                                  ).latency_s  # not the uncalibrated price
