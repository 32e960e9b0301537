"""What the concurrency suite measures with tenants, and how far it goes under each profile.

- the plan: the window and timeouts come from the profile itself; the tenant limit, memory budget and
  search steps grow with it (quick keeps the whole CPU suite near a minute on 2 cores).
- the tenant sweep: N = 1, 2, 4, ... sessions of one model on one device, until a limit. Each step gives
  every tenant its thread share, runs them together over a common window, and records aggregate
  throughput, each tenant's percentiles and fairness. The first step that fails (a load refused, a tenant
  crashed or hung) is kept with its reason and ends the sweep; every earlier step is kept.
- concurrent models: different models on one device at once, against each alone. Each model alone gets
  the whole device (its thread plan for one tenant); together they share it (each gets its share of the
  cores). ``gain`` = sum over models of throughput together / alone: 1.0 is what perfect time-slicing
  would give, above 1 the device does more running them at once (Hao et al. report up to 3x on GPU edge
  devices, 10x on EdgeTPUs).
- model-switch overhead: what alternating between models costs over running each alone. On an EdgeTPU,
  separately compiled models each claim the 8 MiB parameter cache, so switching reloads parameters over
  USB/PCIe; models compiled together (edgetpu_compiler a.tflite b.tflite) share the cache and switch
  cheaply (Coral's co-compilation; Liang et al. see the swap cost). The measurement itself works on any
  Session, so it is the same code on every device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import get_backend
from ..measure.rounds import Estimate, mean_estimate
from ..results.record import metric
from .capacity import MIB
from .tenants import (
    Metrics,
    Step,
    TenantRunner,
    TenantSpec,
    Window,
    backend_load,
    default_feeds,
    plan_threads,
    run_step,
)

if TYPE_CHECKING:
    from ..backends.base import Session
    from ..devices import Device
    from ..measure.profiles import Profile
    from ..models.model import Model

@dataclass(frozen=True)
class ConcurrencyPlan:
    max_tenants: int  # the tenant sweep's limit (1, 2, 4, ... up to it)
    capacity_max_tenants: int  # the memory probe's cap on tenants
    capacity_budget_mb: int  # the memory probe's budget where no min_tenants claim names one (budget_mb)
    server_search_steps: int  # bisection steps of the LoadGen Server search
    switch_rounds: int  # rounds of alternation for the model-switch measurement

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def capacity_budget(self, available: int, claim_mb: float | None = None) -> tuple[float, int]:
        """The memory probe's budget as configured (MiB: a min_tenants claim's budget_mb, else the plan's) and
        in bytes as probed: never above what the device has."""
        mb = float(self.capacity_budget_mb if claim_mb is None else claim_mb)
        return mb, min(int(mb * MIB), available)


PLANS: dict[str, ConcurrencyPlan] = {
    "quick": ConcurrencyPlan(max_tenants=4, capacity_max_tenants=32, capacity_budget_mb=256,
                             server_search_steps=3, switch_rounds=20),
    "standard": ConcurrencyPlan(max_tenants=4, capacity_max_tenants=32, capacity_budget_mb=512,
                                server_search_steps=5, switch_rounds=50),
    "full": ConcurrencyPlan(max_tenants=16, capacity_max_tenants=256, capacity_budget_mb=4096,
                            server_search_steps=8, switch_rounds=200),
}


def plan_for(profile: Profile) -> ConcurrencyPlan:
    """The plan named like the profile; a custom profile gets the standard plan."""
    return PLANS.get(profile.name, PLANS["standard"])


def window_for(profile: Profile) -> Window:
    """Warm-up and window length from the profile; a hang is what outlasts its timeout."""
    return Window(warmup_s=profile.warmup_s, duration_s=profile.min_duration_s, timeout_s=profile.timeout_s)



def tenant_counts(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit``, with ``limit`` itself last when it is not a power of two."""
    if limit < 1:
        raise ValueError("the tenant limit must be at least 1")
    counts, n = [], 1
    while n < limit:
        counts.append(n)
        n *= 2
    counts.append(limit)
    return counts


@dataclass
class SweepResult:
    """Every step run, and why the sweep ended."""

    steps: list[Step] = field(default_factory=list)
    stopped: str = ""

    @property
    def good(self) -> list[Step]:
        return [s for s in self.steps if s.ok]

    def step(self, tenants: int) -> Step | None:
        return next((s for s in self.good if s.tenants == tenants), None)

    @property
    def max_tenants_ok(self) -> int:
        return max((s.tenants for s in self.good), default=0)

    def speedup(self, tenants: int) -> float | None:
        """Aggregate throughput at ``tenants`` over one tenant alone (same sweep)."""
        one, many = self.step(1), self.step(tenants)
        alone = one.aggregate_ips if one is not None else None
        together = many.aggregate_ips if many is not None else None
        if not alone or together is None:
            return None
        return together / alone

    def rows(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.steps]


def run_tenants(model: Model, device: Device, runner: TenantRunner, window: Window, n: int) -> Step:
    """One step: ``n`` tenants of the model together, each with its thread share (a round of a ratio)."""
    tenant_device, plan = plan_threads(device, n)
    return run_step(runner, [TenantSpec(f"tenant{i}", model, tenant_device) for i in range(n)], window, plan)


def run_sweep(model: Model, device: Device, runner: TenantRunner, window: Window, limit: int,
              on_step: Callable[[Step], None] | None = None) -> SweepResult:
    """Grow N until ``limit`` or the first failed step; ``on_step`` sees each step as it ends."""
    result = SweepResult()
    for n in tenant_counts(limit):
        step = run_tenants(model, device, runner, window, n)
        result.steps.append(step)
        if on_step is not None:
            on_step(step)
        if not step.ok:
            result.stopped = f"stopped at {n} tenants: {step.reason}"
            return result
    result.stopped = f"reached the limit of {limit} tenants"
    return result


def worst_p90_rounds(steps: Sequence[Step], tenants: int) -> Estimate:
    """The worst tenant's p90 at ``tenants`` tenants, judged on independent rounds (separate N-tenant steps),
    never on one window: between runs it moved 5-20x, far outside any one window's order-statistic interval.

    Each round gives one figure, the largest of its tenants' p90s; the claim is judged on their geometric mean
    with a 95% t-interval of the logs (the figure is positive and moves by factors), so it bounds the bench's
    typical run, as the speed-up claims do. With the 3-8 rounds a profile allows, nothing else holds its level:
    the largest of n rounds bounds their median only with 1 - 2^-n (87.5% at 3 rounds, 95% needs 5), and a
    high quantile of runs far worse (the largest exceeds the 90th percentile of runs with 1 - 0.9^n: 27% at 3,
    95% needs 29); a bootstrap of 3 values has 10 distinct resamples and never leaves [min, max], so it
    under-covers. The t quantile pays for few rounds (4.3 at 3), and the checker's re-measuring reads a
    t-interval over rounds. A failed round is left out, and the basis says so; with fewer than two good rounds
    the interval is unbounded, so the claim is inconclusive, never passed."""
    figures = [s.worst_p90_ms() for s in steps]
    est = mean_estimate(figures, f"worst tenant's p90 at {tenants} tenants")
    failed = [s.reason or "a tenant completed no query in the window" for s, f in zip(steps, figures) if f is None]
    if not failed:
        return est
    return replace(est, basis=f"{est.basis}; {len(failed)} of {len(steps)} rounds left out, they did not run "
                              f"({'; '.join(failed)})")



@dataclass
class ConcurrentModelsResult:
    models: list[str]
    alone: list[Step]
    together: Step

    @property
    def ok(self) -> bool:
        return self.together.ok and all(s.ok for s in self.alone)

    def ratios(self) -> list[float] | None:
        """Each model's throughput together over alone."""
        if not self.ok:
            return None
        return [t / sum(a.tenant_ips()) for t, a in zip(self.together.tenant_ips(), self.alone)]  # ok: each is its sum

    @property
    def gain(self) -> float | None:
        ratios = self.ratios()
        return sum(ratios) if ratios else None

    def to_dict(self) -> dict[str, Any]:
        return {"models": self.models, "alone": [s.to_dict() for s in self.alone],
                "together": self.together.to_dict(), "ratios": self.ratios(), "gain": self.gain}


def run_concurrent_models(models: list[Model], device: Device, runner: TenantRunner,
                          window: Window) -> ConcurrentModelsResult:
    """Each model alone, then all together, over windows of the same length."""
    solo_device, solo_plan = plan_threads(device, 1)
    alone = [run_step(runner, [TenantSpec(m.name, m, solo_device)], window, solo_plan) for m in models]
    shared_device, shared_plan = plan_threads(device, len(models))
    together = run_step(runner, [TenantSpec(m.name, m, shared_device) for m in models], window, shared_plan)
    return ConcurrentModelsResult([m.name for m in models], alone, together)



def models_metrics(result: ConcurrentModelsResult) -> Metrics:
    how = f"{' + '.join(result.models)} together vs each alone, same window length"
    out: Metrics = {"concurrency_gain": metric(result.gain, "x", f"sum of together/alone throughputs; {how}",
                                               method="derived"),
                    "throughput_ips": metric(result.together.aggregate_ips, "inferences/s",
                                             f"all models' inferences together; {how}")}
    for name, alone, ips in zip(result.models, result.alone, result.together.tenant_ips()):
        out[f"{name}_alone_ips"] = metric(alone.aggregate_ips, "inferences/s", f"{name} alone on the device")
        out[f"{name}_together_ips"] = metric(ips, "inferences/s", f"{name} while the others run")
    return out



@dataclass
class SwitchResult:
    """Median latency of each model alone and when alternating; the difference is the switch cost."""

    label: str
    alone_ms: dict[str, float]
    alternating_ms: dict[str, float]
    rounds: int

    @property
    def overhead_ms(self) -> dict[str, float]:
        return {m: self.alternating_ms[m] - self.alone_ms[m] for m in self.alone_ms}

    @property
    def mean_overhead_ms(self) -> float:
        return float(np.mean(list(self.overhead_ms.values())))

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "alone_ms": self.alone_ms, "alternating_ms": self.alternating_ms,
                "overhead_ms": self.overhead_ms, "mean_overhead_ms": self.mean_overhead_ms, "rounds": self.rounds}


def measure_switching(sessions: dict[str, Session], feeds: dict[str, dict[str, np.ndarray]], rounds: int,
                      label: str = "", clock: Callable[[], int] = time.monotonic_ns) -> SwitchResult:
    """Each model ``rounds`` times back to back, then all of them in turn ``rounds`` times."""
    if len(sessions) < 2:
        raise ValueError("switching needs at least two models")

    def timed(name: str) -> int:
        t0 = clock()
        sessions[name].run(feeds[name])
        return clock() - t0

    for name in sessions:  # first inference (and any first swap-in) excluded
        timed(name)
    alone = {name: float(np.median([timed(name) for _ in range(rounds)])) / 1e6 for name in sessions}
    turns: dict[str, list[int]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name in sessions:
            turns[name].append(timed(name))
    alternating = {name: float(np.median(v)) / 1e6 for name, v in turns.items()}
    return SwitchResult(label, alone, alternating, rounds)


def switching_study(models: list[Model], device: Device, rounds: int, label: str = "",
                    together: bool = False) -> SwitchResult:
    """Load every model on ``device`` (one session each, as tenants of one TPU), time the switching,
    close them all. ``together``: the backend loads them as one group (LiteRT co-compiles them for the
    EdgeTPU, so they share its parameter cache)."""
    sessions: dict[str, Session] = {}
    try:
        backend = get_backend(device.backend)
        if together and hasattr(backend, "load_together"):
            sessions.update(zip([m.name for m in models], backend.load_together(models, device)))
        else:
            for model in models:
                sessions[model.name] = backend_load(model, device)
        feeds = {m.name: default_feeds(sessions[m.name], m) for m in models}
        return measure_switching(sessions, feeds, rounds, label=label)
    finally:
        for session in sessions.values():
            session.close()



def switching_metrics(result: SwitchResult) -> Metrics:
    how = f"median over {result.rounds} rounds, alternating vs each model alone ({result.label})"
    return {"switch_overhead_ms": metric(result.mean_overhead_ms, "ms", how, method="derived"),
            **{f"{m}_switch_overhead_ms": metric(v, "ms", how, method="derived")
               for m, v in result.overhead_ms.items()}}
