"""How many tenants fit: predicted from a tenant's footprint, observed by loading until memory
(or the budget) runs out.

The loads run in a child process (lab.child) so that running out of memory ends one step of the
probe, never the pytest session. ``address_space_mb`` caps the child's address space
(RLIMIT_AS, relative to what it uses once started) so a test can provoke a real allocation
failure cheaply. The first tenant's footprint includes the runtime's one-off cost (its
environment, thread pools); the second tenant's is the marginal cost of one more, so:
    overhead  = footprint(1) - footprint(2)
    predicted = floor((memory - overhead) / footprint(2))
and the observed maximum is the largest N whose memory in use stays within the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ..lab import child
from .memory import MIB, probe_for
from .tenants import Loader, backend_load, default_feeds, describe_error

if TYPE_CHECKING:
    from ..devices import Device
    from ..models.model import Model


@dataclass(frozen=True)
class CapacityPlan:
    """Where the probe stops: a tenant count, a memory budget, an optional address-space cap."""

    max_tenants: int
    budget_bytes: int
    step_timeout_s: float = 60.0
    address_space_mb: float | None = None  # extra address space the child may map (RLIMIT_AS)


@dataclass
class CapacityStep:
    tenants: int
    used_bytes: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _limit_address_space(extra_mb: float) -> None:
    import resource

    from .memory import proc_kib

    current = (proc_kib("/proc/self/status", "VmSize") or 0) * 1024
    limit = current + int(extra_mb * MIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _capacity_main(conn: Connection, model: Model, device: Device, loader: Loader, plan: CapacityPlan) -> None:
    sessions = []  # held until the end: each one occupies its memory
    try:
        probe = probe_for(device)
        if plan.address_space_mb is not None:
            _limit_address_space(plan.address_space_mb)
        baseline = probe.used_bytes()
        conn.send(("baseline", baseline, probe.source))
        for n in range(1, plan.max_tenants + 1):
            try:
                session = loader(model, device)
                sessions.append(session)
                session.run(default_feeds(session, model))
            except (Exception, MemoryError) as exc:
                conn.send(("failed", n, describe_error(exc)))
                return
            used = probe.used_bytes()
            conn.send(("loaded", n, used))
            if used - baseline > plan.budget_bytes:
                return
    except Exception as exc:
        conn.send(("failed", len(sessions) + 1, describe_error(exc)))
    finally:
        conn.send(("end",))
        for session in sessions:
            session.close()


@dataclass
class CapacityResult:
    """The memory line: per-tenant footprints, predicted and observed maximum tenants."""

    plan: CapacityPlan
    available_bytes: int
    available_source: str
    probe_source: str = ""
    baseline_bytes: int | None = None
    steps: list[CapacityStep] = field(default_factory=list)
    stopped: str = ""

    def _loaded(self) -> list[CapacityStep]:
        return [s for s in self.steps if s.ok]

    def footprints(self) -> list[int]:
        """Each tenant's memory: what loading it (and running it once) added."""
        used = [self.baseline_bytes] + [s.used_bytes for s in self._loaded()]
        return [b - a for a, b in zip(used, used[1:])]

    @property
    def footprint_bytes(self) -> int | None:
        """The marginal footprint: tenant 2's (tenant 1 carries the runtime's one-off cost)."""
        fp = self.footprints()
        return fp[1] if len(fp) > 1 else (fp[0] if fp else None)

    @property
    def overhead_bytes(self) -> int:
        fp = self.footprints()
        return max(0, fp[0] - fp[1]) if len(fp) > 1 else 0

    def predicted(self, memory_bytes: int) -> int | None:
        """Tenants that fit in ``memory_bytes`` by the footprint; None when it is not measurable."""
        fp = self.footprint_bytes
        if not fp or fp <= 0:
            return None
        return max(0, math.floor((memory_bytes - self.overhead_bytes) / fp))

    @property
    def predicted_device_max(self) -> int | None:
        return self.predicted(self.available_bytes)

    @property
    def predicted_budget_max(self) -> int | None:
        """The prediction for the probe's own bounds (its memory budget and tenant cap)."""
        p = self.predicted(self.plan.budget_bytes)
        return None if p is None else min(p, self.plan.max_tenants)

    @property
    def observed_max(self) -> int:
        """Tenants loaded and run whose memory in use stayed within the budget."""
        return sum(1 for s in self._loaded()
                   if s.used_bytes - self.baseline_bytes <= self.plan.budget_bytes)

    @property
    def prediction_error(self) -> float | None:
        """|predicted - observed| / observed, both under the probe's bounds."""
        p, o = self.predicted_budget_max, self.observed_max
        if p is None or o == 0:
            return None
        return abs(p - o) / o

    def to_dict(self) -> dict[str, Any]:
        return {
            "available_bytes": self.available_bytes, "available_source": self.available_source,
            "probe": self.probe_source, "baseline_bytes": self.baseline_bytes,
            "budget_bytes": self.plan.budget_bytes, "max_tenants": self.plan.max_tenants,
            "address_space_mb": self.plan.address_space_mb,
            "steps": [{"tenants": s.tenants, "used_bytes": s.used_bytes, "ok": s.ok, "error": s.error}
                      for s in self.steps],
            "footprints_bytes": self.footprints(), "footprint_bytes": self.footprint_bytes,
            "overhead_bytes": self.overhead_bytes,
            "predicted_device_max": self.predicted_device_max,
            "predicted_budget_max": self.predicted_budget_max,
            "observed_max": self.observed_max, "prediction_error": self.prediction_error,
            "stopped": self.stopped,
        }


def probe_capacity(model: Model, device: Device, plan: CapacityPlan, available: tuple[int, str],
                   loader: Loader = backend_load) -> CapacityResult:
    """Load tenants one by one in a child process until the budget, the cap or a failure."""
    result = CapacityResult(plan, *available)
    proc = child.start(_capacity_main, model, device, loader, plan, name="capacity")
    parent = proc.conn
    try:
        while True:
            next_n = len(result.steps) + 1
            if not parent.poll(plan.step_timeout_s):
                result.steps.append(CapacityStep(next_n, error=f"hung: no answer within {plan.step_timeout_s:g} s"))
                break
            try:
                message = parent.recv()
            except EOFError:
                proc.join(timeout=5)
                result.steps.append(CapacityStep(next_n, error=f"the child process died while loading tenant "
                                                                f"{next_n} (exit code {proc.exitcode})"))
                break
            kind = message[0]
            if kind == "baseline":
                result.baseline_bytes, result.probe_source = message[1], message[2]
            elif kind == "loaded":
                result.steps.append(CapacityStep(message[1], used_bytes=message[2]))
            elif kind == "failed":
                result.steps.append(CapacityStep(message[1], error=message[2]))
            elif kind == "end":
                break
    finally:
        proc.join(timeout=5)
        proc.close()
    result.stopped = _why_stopped(result)
    return result


def _why_stopped(result: CapacityResult) -> str:
    last = result.steps[-1] if result.steps else None
    if last is None:
        return "nothing was loaded"
    if not last.ok:
        return f"tenant {last.tenants} failed: {last.error}"
    if result.baseline_bytes is not None and last.used_bytes - result.baseline_bytes > result.plan.budget_bytes:
        return f"tenant {last.tenants} took memory in use past the budget of {result.plan.budget_bytes / MIB:.0f} MiB"
    return f"reached the cap of {result.plan.max_tenants} tenants"
