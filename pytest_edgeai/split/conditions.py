"""Plans under changing conditions: when does repartitioning pay? (Scission's follow-up question.)

A sweep varies one link's rate and one tier's CPU load (a bounded load generator sharing that
tier's CPUs: netns.load_main). At each condition the loaded tier's blocks are profiled under
that load (this host plays every tier; each stage is pinned to its tier's CPUs), the planner
picks the best plan, and the conditions where the best plan changes are reported. Where the
re-planned partition differs from the fixed one (the plan chosen at the sweep's first
condition), both are executed on the shaped link under that condition, in interleaved rounds
(fixed, re-planned, fixed, ...; one executor each, kept warm), and the ratio of their median
latencies is judged by its interval across rounds, not by the samples of one window.
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..lab import child
from ..measure.stats import mean_ci
from . import netns
from .constraints import Constraint
from .cuts import GraphCuts
from .execute import SplitExecutor, stages_for
from .network import LinkProfile
from .planner import Plan, SplitProblem, evaluate, plan
from .profile import block_latencies


@dataclass(frozen=True)
class Condition:
    """A link rate (Mbit/s) and a CPU load (the busy fraction of the loaded tier's CPUs)."""

    rate_mbps: float
    load: float

    def describe(self) -> str:
        return f"{self.rate_mbps:g} Mbit/s, load {self.load:.0%}"


@dataclass
class Planned:
    """The best plan at one condition, from blocks profiled under it."""

    condition: Condition
    plan: Plan
    loaded_block_s: list[float]
    problem: SplitProblem

    def cost_of(self, other: Plan) -> Plan:
        """``other``'s placement priced under this condition (the fixed plan's prediction here)."""
        return evaluate(self.problem, [(s.tier, s.start, s.stop) for s in other.stages], other.objective)


@dataclass
class Change:
    """Two neighbouring conditions of the sweep whose best plans differ."""

    before: Condition
    after: Condition
    plan_before: str
    plan_after: str


@dataclass
class Comparison:
    """Fixed against re-planned partition at one condition, measured in interleaved rounds."""

    condition: Condition
    fixed: str
    replanned: str
    fixed_predicted_s: float
    replanned_predicted_s: float
    fixed_median_s: list[float] = field(default_factory=list)      # one per round
    replanned_median_s: list[float] = field(default_factory=list)
    shaping: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """Per round: fixed median / re-planned median (> 1: re-planning paid)."""
        return [a / b for a, b in zip(self.fixed_median_s, self.replanned_median_s)]

    @property
    def ratio_ci95(self) -> tuple[float, float]:
        return mean_ci(np.asarray(self.ratios))

    @property
    def verdict(self) -> str:
        lo, hi = self.ratio_ci95
        return "re-planned faster" if lo > 1.0 else "fixed faster" if hi < 1.0 else "inconclusive"


def profile_under_load(graph: GraphCuts, boundaries: Sequence[int], feed: Mapping[str, np.ndarray],
                       cpus: Sequence[int], load: float, repeats: int, workers: int = 1) -> list[float]:
    """Per-block seconds on ``cpus`` while ``workers`` load generators keep them ``load`` busy."""
    own = os.sched_getaffinity(0)
    generators = [child.start(netns.load_main, None, list(cpus), load, 0.01, 600.0, name="load-profile")
                  for _ in range(workers if load > 0 else 0)]
    try:
        os.sched_setaffinity(0, set(cpus))
        return block_latencies(graph, boundaries, feed, repeats=repeats)
    finally:
        os.sched_setaffinity(0, own)
        for generator in generators:
            generator.close()


def sweep(graph: GraphCuts, boundaries: Sequence[int], feed: Mapping[str, np.ndarray],
          tiers: Sequence[str], links: Mapping[tuple[str, str], LinkProfile], swept: tuple[str, str],
          loaded: str, cpus: Mapping[str, Sequence[int]], rates: Sequence[float], loads: Sequence[float],
          boundary_bytes: Sequence[float], constraints: Sequence[Constraint], repeats: int = 5,
          profile: Callable[..., list[float]] = profile_under_load, workers: int = 1,
          ) -> tuple[list[Planned], list[Change]]:
    """The best plan at every (rate, load); the neighbouring conditions where it changes.

    ``profile(graph, boundaries, feed, cpus, load, repeats, workers)`` gives per-block seconds under
    ``workers`` load generators each busy ``load`` of the time."""
    others = {t: profile(graph, boundaries, feed, cpus[t], 0.0, repeats, workers) for t in tiers if t != loaded}
    planned = []
    for load in loads:
        loaded_s = profile(graph, boundaries, feed, cpus[loaded], load, repeats, workers)
        for rate in rates:
            table = dict(links)
            table[swept] = replace(links[swept], bandwidth_mbps=rate)
            problem = SplitProblem(tuple(tiers), {**others, loaded: loaded_s}, list(boundary_bytes), table)
            planned.append(Planned(Condition(rate, load), plan(problem, "latency", constraints)[0], loaded_s, problem))
    by = {(p.condition.load, p.condition.rate_mbps): p for p in planned}
    changes: list[Change] = []
    for load in loads:  # along the rate, then along the load
        for r0, r1 in itertools.pairwise(rates):
            _changed(by[(load, r0)], by[(load, r1)], changes)
    for rate in rates:
        for l0, l1 in itertools.pairwise(loads):
            _changed(by[(l0, rate)], by[(l1, rate)], changes)
    return planned, changes


def _changed(a: Planned, b: Planned, out: list[Change]) -> None:
    if a.plan.cuts != b.plan.cuts or [s.tier for s in a.plan.stages] != [s.tier for s in b.plan.stages]:
        out.append(Change(a.condition, b.condition, _route(a.plan), _route(b.plan)))


def _route(p: Plan) -> str:
    return " -> ".join(f"{s.tier}[{s.start}:{s.stop}]" for s in p.stages)


def compare(graph: GraphCuts, boundaries: Sequence[int], fixed: Plan, replanned: Plan,
            links: Mapping[tuple[str, str], LinkProfile], condition: Condition, swept: tuple[str, str],
            loaded: str, cpus: Mapping[str, Sequence[int]], feeds: Sequence[Mapping[str, np.ndarray]],
            rounds: int = 5, network: str = "kernel", timeout_s: float = 30.0, workers: int = 1) -> Comparison:
    """Both plans on the shaped link under ``condition``, interleaved round by round (``fixed`` and
    ``replanned`` priced under that condition: Planned.cost_of)."""
    table = dict(links)
    table[swept] = replace(links[swept], bandwidth_mbps=condition.rate_mbps)
    result = Comparison(condition, _route(fixed), _route(replanned), fixed.latency_s, replanned.latency_s)
    executors = []
    own = os.sched_getaffinity(0)
    try:
        if fixed.stages[0].tier in cpus:  # the first stage runs in this process
            os.sched_setaffinity(0, set(cpus[fixed.stages[0].tier]))
        for p in (fixed, replanned):
            stages, stage_links = stages_for(p, boundaries, table)
            executors.append(SplitExecutor(graph, stages, stage_links, timeout_s=timeout_s, network=network,
                                           cpus=cpus))
        if condition.load > 0:
            seconds = 60.0 + rounds * len(feeds) * 4 * (timeout_s / 30.0)
            for ex in executors:  # each executor's loaded tier shares the same CPUs, so one load is enough
                if loaded in [s.tier for s in ex.stages]:
                    ex.load(loaded, condition.load, seconds, workers)
                    break
        result.shaping = executors[0].shaping
        for ex in executors:
            ex.measure(feeds[:1], warmup=0)  # warm both before the first timed round
        for _ in range(rounds):
            for ex, into in zip(executors, (result.fixed_median_s, result.replanned_median_s)):
                start = len(ex.latencies_s)
                ex.measure(feeds, warmup=0)
                into.append(statistics.median(ex.latencies_s[start:]))
    finally:
        os.sched_setaffinity(0, own)
        for ex in executors:
            ex.close()
    return result
