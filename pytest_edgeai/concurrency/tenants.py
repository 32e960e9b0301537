"""What a tenant is, the loop each one runs, and what a step of N tenants yields.

All tenants start together (a barrier) and are measured over one common window: the window
opens ``warmup_s`` after the barrier releases and lasts ``duration_s``; a query counts when it
completes inside it. Tenants keep running until the window closes, so the load is the same from
its first to its last nanosecond. Clocks are ``time.monotonic_ns`` (system-wide on Linux, so
tenants in other processes share it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..measure.stats import summarize
from .fairness import Fairness, fairness
from .threads import ThreadPlan

if TYPE_CHECKING:
    import numpy as np

    from ..backends.base import Session
    from ..devices import Device
    from ..models.model import Model

Loader = Callable[["Model", "Device"], "Session"]
Feeder = Callable[["Session"], "dict[str, np.ndarray]"]


def backend_load(model: Model, device: Device) -> Session:
    """Load through the device's registered backend (picklable: spawned tenants use it)."""
    from ..backends.base import get_backend

    return get_backend(device.backend).load(model, device)


def default_feeds(session: Session, model: Model | None = None) -> dict[str, np.ndarray]:
    """Batch-1 inputs matching the session's specs (and the model's input_shapes, if any)."""
    from ..measure.inputs import make_feeds

    overrides = model.params.get("input_shapes") if model is not None else None
    return make_feeds(session.inputs, 1, overrides=overrides)


@dataclass(frozen=True)
class TenantSpec:
    """One tenant: a model on a device (the device already carries its thread setting)."""

    name: str
    model: Model
    device: Device


@dataclass(frozen=True)
class Window:
    """The common measurement window, and how long past it a tenant may take to return."""

    warmup_s: float
    duration_s: float
    timeout_s: float


@dataclass
class TenantOutcome:
    """What one tenant did inside the window; ``error`` says why it has nothing."""

    name: str
    model: str
    latencies_ns: list[int] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def drive(session: Session, feeds: dict[str, np.ndarray], start_ns: int, end_ns: int) -> list[int]:
    """Run back to back until the window closes; latencies of queries completing inside it."""
    run = session.run
    clock = time.monotonic_ns
    kept: list[int] = []
    while True:
        t0 = clock()
        run(feeds)
        t1 = clock()
        if t1 >= end_ns:
            return kept
        if t1 >= start_ns:
            kept.append(t1 - t0)


def feeds_for(session: Session, spec: TenantSpec, feeder: Feeder | None) -> dict[str, np.ndarray]:
    return feeder(session) if feeder else default_feeds(session, spec.model)


class LoadingRunner:
    """What every runner holds: how tenants are loaded and fed (fakes replace the loader)."""

    def __init__(self, loader: Loader = backend_load, feeder: Feeder | None = None):
        self.loader = loader
        self.feeder = feeder


class TenantRunner(Protocol):
    """Runs N tenants together (threads in this process, or one process each)."""

    mode: str

    def run(self, tenants: list[TenantSpec], window: Window) -> list[TenantOutcome]: ...


@dataclass
class Step:
    """N tenants measured together, or the reason that step failed."""

    tenants: int
    outcomes: list[TenantOutcome]
    window_s: float
    threads: ThreadPlan | None = None
    mode: str = "thread"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(o.ok for o in self.outcomes) and len(self.outcomes) == self.tenants

    @property
    def reason(self) -> str | None:
        if self.error:
            return self.error
        bad = [f"{o.name}: {o.error}" for o in self.outcomes if not o.ok]
        return "; ".join(bad) or None

    def tenant_ips(self) -> list[float]:
        return [len(o.latencies_ns) / self.window_s for o in self.outcomes]

    @property
    def aggregate_ips(self) -> float | None:
        return sum(self.tenant_ips()) if self.ok else None

    def fairness(self) -> Fairness | None:
        return fairness(self.tenant_ips()) if self.ok else None

    def to_dict(self) -> dict[str, Any]:
        """One row of the sweep: aggregate, each tenant's percentiles and share, or the failure."""
        row: dict[str, Any] = {"tenants": self.tenants, "mode": self.mode, "ok": self.ok,
                               "window_s": self.window_s,
                               "threads": self.threads.to_dict() if self.threads else None}
        if not self.ok:
            row["error"] = self.reason
            return row
        fair = self.fairness()
        row["aggregate_ips"] = self.aggregate_ips
        row["fairness"] = fair.to_dict() if fair else None
        row["per_tenant"] = [_tenant_row(o, ips) for o, ips in zip(self.outcomes, self.tenant_ips())]
        return row

    def worst_p90_ms(self) -> float | None:
        if not self.ok or any(not o.latencies_ns for o in self.outcomes):
            return None
        return max(summarize(o.latencies_ns).p90_ms for o in self.outcomes)


def _tenant_row(outcome: TenantOutcome, ips: float) -> dict[str, Any]:
    row: dict[str, Any] = {"name": outcome.name, "model": outcome.model, "throughput_ips": ips,
                           "queries": len(outcome.latencies_ns), "settings": outcome.settings}
    if outcome.latencies_ns:
        s = summarize(outcome.latencies_ns)
        row.update(latency_p50_ms=s.median_ms, latency_p90_ms=s.p90_ms, latency_p99_ms=s.p99_ms,
                   latency_mean_ms=s.mean_ms)
    return row


def run_step(runner: TenantRunner, specs: list[TenantSpec], window: Window,
             plan: ThreadPlan | None) -> Step:
    """Run tenants together as one step; a runner that fails itself fails the step, not the caller."""
    try:
        return Step(len(specs), runner.run(specs, window), window.duration_s, threads=plan, mode=runner.mode)
    except Exception as exc:
        return Step(len(specs), [], window.duration_s, threads=plan, mode=runner.mode,
                    error=f"the {runner.mode} runner failed: {describe_error(exc)}")


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
