"""The split planner's DP against a brute-force enumeration on seeded random small problems.

The brute force lives only here: it enumerates every route through the tier chain and every
non-decreasing placement of the cuts, checks each constraint directly from the raw tables,
and scores plans itself, so it shares no logic with the DP beyond the problem's data.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from pytest_edgeai.errors import ConfigError, PlanError
from pytest_edgeai.split.constraints import Exclude, KeepInputOnDevice, MaxTierTime, MaxUpload, Pin
from pytest_edgeai.split.network import LinkProfile
from pytest_edgeai.split.planner import SplitProblem, plan

TIERS = ("device", "edge", "cloud", "far")


def random_problem(rng: np.random.Generator, blocks: int, tiers: int) -> SplitProblem:
    names = TIERS[:tiers]
    lat = {}
    for t in names:
        values = rng.uniform(0.001, 0.05, blocks)
        values[rng.random(blocks) < 0.1] = math.inf  # some blocks a tier cannot run
        lat[t] = list(values)
    energy = {names[0]: list(rng.uniform(0.01, 1.0, blocks))}
    links = {}
    for a, b in itertools.combinations(names, 2):
        if rng.random() < 0.8:
            links[(a, b)] = LinkProfile(a, b, float(rng.uniform(1, 100)), float(rng.uniform(0, 80)),
                                        tx_power_w=float(rng.uniform(0, 2)),
                                        message_overhead_s=float(rng.choice([0.0, rng.uniform(-0.02, 0.01)])))
    # measured per-message CPU (receive, send) on some tiers
    message = {t: (float(rng.uniform(0, 0.01)), float(rng.uniform(0, 0.01))) for t in names if rng.random() < 0.5}
    return SplitProblem(names, lat, list(rng.uniform(1e3, 2e5, blocks + 1)), links, energy, message_s=message)


def random_constraints(rng: np.random.Generator, p: SplitProblem) -> list:
    out = []
    if rng.random() < 0.4:
        out.append(Pin(int(rng.integers(p.blocks)), str(rng.choice(p.tiers))))
    if rng.random() < 0.5:
        out.append(Exclude(int(rng.integers(p.blocks)), str(rng.choice(p.tiers))))
    if p.links and rng.random() < 0.5:
        src, dst = list(p.links)[int(rng.integers(len(p.links)))]
        out.append(MaxUpload(src, dst, float(rng.uniform(1e4, 2e5))))
    if rng.random() < 0.5:
        out.append(MaxTierTime(str(rng.choice(p.tiers)), float(rng.uniform(0.01, 0.1))))
    if rng.random() < 0.3:
        out.append(KeepInputOnDevice())
    return out


def brute_force(p: SplitProblem, constraints: list, objective: str) -> list[float]:
    """Scores of every feasible plan, ascending."""
    pins = {c.block: c.tier for c in constraints if isinstance(c, Pin)}
    excluded = {(c.block, c.tier) for c in constraints if isinstance(c, Exclude)}
    caps = {(c.src, c.dst): c.max_bytes for c in constraints if isinstance(c, MaxUpload)}
    tcaps = {c.tier: c.max_s for c in constraints if isinstance(c, MaxTierTime)}
    keep = any(isinstance(c, KeepInputOnDevice) for c in constraints)
    scores = []
    rest = p.tiers[1:]
    for r in range(len(rest) + 1):
        for extra in itertools.combinations(rest, r):
            route = (p.tiers[0],) + extra
            for cuts in itertools.combinations_with_replacement(range(p.blocks), len(route) - 1):
                bounds = (0,) + cuts + (p.blocks,)
                steps, busy, energy, ok = [], [], 0.0, True
                for n, tier in enumerate(route):
                    a, b = bounds[n], bounds[n + 1]
                    blocks = range(a, b)
                    lat = [p.latency_s[tier][k] for k in blocks]
                    if any(math.isinf(x) for x in lat) or any(pins.get(k, tier) != tier for k in blocks) \
                            or any((k, tier) in excluded for k in blocks) or sum(lat) > tcaps.get(tier, math.inf):
                        ok = False
                        break
                    receive, send = p.message_s.get(tier, (0.0, 0.0))
                    cpu = sum(lat) + (receive if n else 0.0) + (send if n + 1 < len(route) else 0.0)
                    steps.append(cpu)
                    busy.append(cpu)
                    energy += sum(p.energy_j.get(tier, [0.0] * p.blocks)[k] for k in blocks)
                    if n + 1 < len(route):
                        key = (tier, route[n + 1])
                        nbytes = p.boundary_bytes[b]
                        if key not in p.links or nbytes > caps.get(key, math.inf) or (keep and b == 0):
                            ok = False
                            break
                        link = p.links[key]
                        wire = nbytes * 8 / (link.bandwidth_mbps * 1e6 * (1 - link.loss))
                        secs = link.rtt_ms / 2000 + max(0.0, wire + link.message_overhead_s)
                        steps.append(secs)
                        busy.append(wire)  # a pipeline overlaps the delay; only serialisation occupies the link
                        energy += secs * link.tx_power_w
                if ok:
                    scores.append({"latency": sum(steps), "throughput": max(busy), "energy": energy}[objective])
    return sorted(scores)


@pytest.mark.parametrize("objective", ["latency", "energy", "throughput"])
def test_dp_matches_brute_force_on_random_problems(objective):
    rng = np.random.default_rng({"latency": 1, "energy": 2, "throughput": 3}[objective])
    checked = infeasible = 0
    for _ in range(60):
        p = random_problem(rng, int(rng.integers(1, 7)), int(rng.integers(1, 5)))
        cons = random_constraints(rng, p)
        top = int(rng.integers(1, 6))
        expected = brute_force(p, cons, objective)[:top]
        if not expected:
            with pytest.raises(PlanError):
                plan(p, objective, cons, top=top)
            infeasible += 1
            continue
        got = [x.score for x in plan(p, objective, cons, top=top)]
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
        checked += 1
    assert checked >= 20 and infeasible >= 1  # the seeds exercise both branches


def test_throughput_bottleneck_is_serialisation_not_delay():
    """A long, fast link: its delay (50 ms one way) exceeds every stage, its serialisation does not.
    The pipeline's rate is set by the slowest compute stage, so splitting beats the device alone
    (40 ms a query); counting the delay as busy time would keep everything on the device."""
    link = LinkProfile("device", "edge", 1000.0, 100.0)  # 1 Gbit/s, 100 ms RTT
    p = SplitProblem(tiers=("device", "edge"), latency_s={"device": [0.02, 0.02], "edge": [math.inf, 0.001]},
                     boundary_bytes=[1e4, 1e4, 1e4], links={("device", "edge"): link})
    best = plan(p, "throughput")[0]
    assert [(s.tier, s.start, s.stop) for s in best.stages] == [("device", 0, 1), ("edge", 1, 2)]
    assert best.transfers[0].busy_s == pytest.approx(1e4 * 8 / 1e9)
    assert best.bottleneck_s == pytest.approx(0.02)  # compute of the device stage, not the 50 ms delay
    assert best.throughput_per_s == pytest.approx(50.0)
    assert best.latency_s == pytest.approx(0.02 + 0.05 + 1e4 * 8 / 1e9 + 0.001)


def test_plans_are_distinct_and_respect_constraints():
    rng = np.random.default_rng(7)
    p = random_problem(rng, 8, 3)
    plans = plan(p, "latency", [KeepInputOnDevice()], top=10)
    routes = {tuple((s.tier, s.start, s.stop) for s in x.stages) for x in plans}
    assert len(routes) == len(plans)
    assert all(x.stages[0].stop > 0 for x in plans)  # the raw input never left the device
    for x in plans:  # every block placed exactly once, in order
        assert [s.start for s in x.stages[1:]] == [s.stop for s in x.stages[:-1]]
        assert x.stages[0].start == 0 and x.stages[-1].stop == p.blocks


def test_relay_through_a_tier_without_a_direct_link():
    links = {("device", "edge"): LinkProfile("device", "edge", 10, 10),
             ("edge", "cloud"): LinkProfile("edge", "cloud", 100, 10)}
    p = SplitProblem(("device", "edge", "cloud"),
                     {"device": [1.0, 1.0], "cloud": [0.001, 0.001]},  # the edge cannot compute
                     [1000, 1000, 1000], links)
    best = plan(p)[0]
    assert [s.tier for s in best.stages] == ["device", "edge", "cloud"]
    assert best.stages[1].start == best.stages[1].stop  # the edge only relays


def test_infeasible_names_the_conflicting_constraints():
    p = SplitProblem(("device", "cloud"), {"device": [0.01, 0.01], "cloud": [0.001, 0.001]},
                     [5000, 100, 10], {("device", "cloud"): LinkProfile("device", "cloud", 1, 10)})
    cons = [MaxTierTime("cloud", 1.0), Pin(0, "cloud"), KeepInputOnDevice()]
    with pytest.raises(PlanError) as err:
        plan(p, constraints=cons)
    msg = str(err.value)
    assert "pinned to cloud" in msg and "must not leave the device" in msg
    assert "compute on cloud" not in msg  # not part of the conflict


def test_infeasible_without_constraints_says_why():
    p = SplitProblem(("device", "cloud"), {"device": [0.01, math.inf], "cloud": [0.001, 0.001]},
                     [5000, 100, 10], {})
    with pytest.raises(PlanError, match="do not connect"):
        plan(p)
    q = SplitProblem(("device", "cloud"), {"device": [0.01, math.inf]}, [5000, 100, 10], {})
    with pytest.raises(PlanError, match="can run block"):
        plan(q)


def test_bad_problems_are_config_errors():
    with pytest.raises(ConfigError, match="2 values for 3 blocks"):
        SplitProblem(("device",), {"device": [1, 2]}, [1, 2, 3, 4], {})
    with pytest.raises(ConfigError, match="not in the chain"):
        SplitProblem(("device",), {"edge": [1]}, [1, 2], {})
    with pytest.raises(PlanError, match="tier 'clod'.*did you mean 'cloud'"):
        plan(SplitProblem(("device", "cloud"), {"device": [1]}, [1, 2], {}), constraints=[Pin(0, "clod")])
    with pytest.raises(PlanError, match="energy objective needs"):
        plan(SplitProblem(("device",), {"device": [1]}, [1, 2], {}), "energy")
