"""Plans under changing conditions: when does repartitioning pay? (Scission's follow-up question.)

A sweep varies one link's rate and one tier's CPU load (a bounded load generator sharing that
tier's CPUs: netns.load_main). At each condition every tier's blocks are profiled beside that load
(this host plays every tier, each stage pinned to its tier's CPUs, and on this project's 2-vCPU VM a
load on one vCPU slowed a block on the other 1.2-8x, varying from run to run: measured in
benchmarks/bench_split_network.py), the planner picks the best plan, and the conditions where the
best plan changes are reported. With ``Calibrate`` each of the planner's top candidates (and the
fixed plan) is also run briefly on the shaped link under the condition and re-priced with what that
run measured (execute.Calibration.reprice, as the split suite prices its plan): the message CPU a
loaded tier pays to encode and send, which a per-block profile does not see, and, with
``compute_as_run``, each stage's compute as it ran. A tier may be emulated as a slower machine
(``slowdown``: its stage sleeps in proportion to each compute, leaving the CPU free, and its profile
is scaled alike), said so wherever it is used. Where the re-planned partition differs from the
fixed one (the plan chosen at the sweep's first condition), both are executed on the shaped link
under that condition, in interleaved rounds (fixed, re-planned, fixed, ...; one executor each, kept
warm), and the ratio of their median latencies is judged by its interval across rounds, not by the
samples of one window.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..lab import child
from ..measure.stats import mean_ci
from . import netns
from .constraints import Constraint
from .cuts import GraphCuts
from .execute import Calibration, SplitExecutor, stages_for
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
    """The best plan at one condition, from blocks profiled under it (and, where the sweep calibrated,
    each candidate's per-message costs measured under it: ``priced`` by route, from ``calibrations``)."""

    condition: Condition
    plan: Plan
    loaded_block_s: list[float]
    problem: SplitProblem
    uncalibrated: Plan | None = None  # the planner's best before message costs were measured
    priced: dict[str, Plan] = field(default_factory=dict)
    calibrations: dict[str, Calibration] = field(default_factory=dict)

    def cost_of(self, other: Plan) -> Plan:
        """``other``'s placement priced under this condition (the fixed plan's prediction here): with its
        measured message costs where the sweep calibrated it here."""
        return self.priced.get(_route(other)) or evaluate(
            self.problem, [(s.tier, s.start, s.stop) for s in other.stages], other.objective)


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
                       cpus: Sequence[int], load: float, repeats: int, workers: int = 1,
                       load_cpus: Sequence[int] | None = None) -> list[float]:
    """Per-block seconds on ``cpus`` while ``workers`` load generators keep ``load_cpus`` (default: ``cpus``)
    ``load`` busy: a tier not loaded is profiled beside the load too, since on one host it reaches CPUs it
    does not run on (this project's 2-vCPU VM: a busy loop on one vCPU slowed a block on the other 1.2-8x)."""
    own = os.sched_getaffinity(0)
    generators = [child.start(netns.load_main, None, list(load_cpus or cpus), load, 0.01, 600.0, name="load-profile")
                  for _ in range(workers if load > 0 else 0)]
    try:
        os.sched_setaffinity(0, set(cpus))
        return block_latencies(graph, boundaries, feed, repeats=repeats)
    finally:
        os.sched_setaffinity(0, own)
        for generator in generators:
            generator.close()


@dataclass(frozen=True)
class Calibrate:
    """How a sweep prices plans with their per-message costs (execute.Calibration, as the split suite does):
    at each condition the planner's ``top`` plans and the fixed one are each run on the shaped link under
    that condition (its load included) for ``feeds``, and re-priced with what that run measured."""

    feeds: Sequence[Mapping[str, np.ndarray]]
    top: int = 3
    network: str = "kernel"
    timeout_s: float = 30.0
    workers: int = 1
    compute_as_run: bool = False  # price each stage's compute as its calibration runs measured it


def sweep(graph: GraphCuts, boundaries: Sequence[int], feed: Mapping[str, np.ndarray],
          tiers: Sequence[str], links: Mapping[tuple[str, str], LinkProfile], swept: tuple[str, str],
          loaded: str, cpus: Mapping[str, Sequence[int]], rates: Sequence[float], loads: Sequence[float],
          boundary_bytes: Sequence[float], constraints: Sequence[Constraint], repeats: int = 5,
          profile: Callable[..., list[float]] = profile_under_load, workers: int = 1,
          calibrate: Calibrate | None = None, slowdown: Mapping[str, float] | None = None,
          ) -> tuple[list[Planned], list[Change]]:
    """The best plan at every (rate, load); the neighbouring conditions where it changes.

    ``profile(graph, boundaries, feed, cpus, load, repeats, workers, load_cpus)`` gives per-block seconds on
    ``cpus`` under ``workers`` load generators on ``load_cpus``, each busy ``load`` of the time: every tier is
    profiled under each load (the execution it predicts runs beside that load too). With ``calibrate``, the
    best plan is the cheapest once re-priced with its measured per-message costs (the first condition first:
    its best is the fixed plan, priced at every later condition too). ``slowdown``: tier -> how many times
    slower than this host it is emulated (its profile scaled so, its stages paced so: execute.pace)."""
    slow = dict(slowdown or {})
    planned: list[Planned] = []
    fixed: Plan | None = None
    for load in loads:
        profiled = {t: [x * slow.get(t, 1.0) for x in profile(graph, boundaries, feed, cpus[t], load, repeats, workers,
                                                              cpus[loaded])] for t in tiers}
        loaded_s = profiled[loaded]
        for rate in rates:
            table = dict(links)
            table[swept] = replace(links[swept], bandwidth_mbps=rate)
            problem = SplitProblem(tuple(tiers), profiled, list(boundary_bytes), table)
            condition = Condition(rate, load)
            if calibrate is None:
                planned.append(Planned(condition, plan(problem, "latency", constraints)[0], loaded_s, problem))
                continue
            candidates = plan(problem, "latency", constraints, top=calibrate.top) + ([fixed] if fixed else [])
            priced: dict[str, Plan] = {}
            measured: dict[str, Calibration] = {}
            for candidate in candidates:
                route = _route(candidate)
                if route not in priced:
                    measured[route] = calibrated(graph, boundaries, candidate, problem, condition, loaded, cpus,
                                                 calibrate, slow)
                    priced[route] = measured[route].reprice(problem, candidate, calibrate.compute_as_run)
            best = min(priced.values(), key=lambda p: p.latency_s)
            fixed = fixed or best
            planned.append(Planned(condition, best, loaded_s, problem, candidates[0], priced, measured))
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


@contextlib.contextmanager
def _executors(graph: GraphCuts, boundaries: Sequence[int], plans: Sequence[Plan],
               links: Mapping[tuple[str, str], LinkProfile], condition: Condition, loaded: str,
               cpus: Mapping[str, Sequence[int]], network: str, timeout_s: float, workers: int,
               seconds: float, slowdown: Mapping[str, float]) -> Iterator[list[SplitExecutor]]:
    """An executor per plan under ``condition`` (this process, which runs each first stage, on that tier's
    CPUs; one bounded load of ``seconds`` on the loaded tier's CPUs, which every executor's loaded tier
    shares), closed and the CPUs given back afterwards."""
    executors: list[SplitExecutor] = []
    own = os.sched_getaffinity(0)
    try:
        if plans[0].stages[0].tier in cpus:
            os.sched_setaffinity(0, set(cpus[plans[0].stages[0].tier]))
        for p in plans:
            stages, stage_links = stages_for(p, boundaries, links)
            executors.append(SplitExecutor(graph, stages, stage_links, timeout_s=timeout_s, network=network,
                                           cpus=cpus, slowdown=slowdown))
        if condition.load > 0:
            loading = [ex for ex in executors if loaded in [s.tier for s in ex.stages]]
            if loading:
                loading[0].load(loaded, condition.load, seconds, workers)
        yield executors
    finally:
        os.sched_setaffinity(0, own)
        for ex in executors:
            ex.close()


def calibrated(graph: GraphCuts, boundaries: Sequence[int], candidate: Plan, problem: SplitProblem,
               condition: Condition, loaded: str, cpus: Mapping[str, Sequence[int]],
               how: Calibrate, slowdown: Mapping[str, float]) -> Calibration:
    """``candidate``'s per-message costs measured on the shaped link under ``condition`` (one untimed warm-up)."""
    seconds = 30.0 + 4 * len(how.feeds) * (how.timeout_s / 30.0)
    with _executors(graph, boundaries, [candidate], problem.links, condition, loaded, cpus, how.network,
                    how.timeout_s, how.workers, seconds, slowdown) as (ex,):
        return ex.calibrate(how.feeds, warmup=1)


def compare(graph: GraphCuts, boundaries: Sequence[int], fixed: Plan, replanned: Plan,
            links: Mapping[tuple[str, str], LinkProfile], condition: Condition, swept: tuple[str, str],
            loaded: str, cpus: Mapping[str, Sequence[int]], feeds: Sequence[Mapping[str, np.ndarray]],
            rounds: int = 5, network: str = "kernel", timeout_s: float = 30.0, workers: int = 1,
            slowdown: Mapping[str, float] | None = None) -> Comparison:
    """Both plans on the shaped link under ``condition``, interleaved round by round with the order alternating
    (``fixed`` and ``replanned`` priced under that condition: Planned.cost_of)."""
    table = dict(links)
    table[swept] = replace(links[swept], bandwidth_mbps=condition.rate_mbps)
    result = Comparison(condition, _route(fixed), _route(replanned), fixed.latency_s, replanned.latency_s)
    seconds = 60.0 + rounds * len(feeds) * 4 * (timeout_s / 30.0)
    with _executors(graph, boundaries, [fixed, replanned], table, condition, loaded, cpus, network, timeout_s,
                    workers, seconds, dict(slowdown or {})) as executors:
        result.shaping = executors[0].shaping
        for ex in executors:
            ex.measure(feeds[:1], warmup=0)  # warm both before the first timed round
        arms = list(zip(executors, (result.fixed_median_s, result.replanned_median_s)))
        for i in range(rounds):  # fixed first, then re-planned first (A B, B A, ...): a drift within a round cancels
            for ex, into in arms if i % 2 == 0 else arms[::-1]:
                start = len(ex.latencies_s)
                ex.measure(feeds, warmup=0)
                into.append(statistics.median(ex.latencies_s[start:]))
    return result
