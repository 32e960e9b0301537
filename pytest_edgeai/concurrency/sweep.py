"""The tenant sweep: N = 1, 2, 4, ... sessions of one model on one device, until a limit.

Each step gives every tenant its thread share (threads.plan_threads), runs them together over
a common window, and records aggregate throughput, each tenant's percentiles and fairness. The
first step that fails (a load refused, a tenant crashed or hung) is kept with its reason and
ends the sweep; every earlier step is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .tenants import Step, TenantRunner, TenantSpec, Window, run_step
from .threads import plan_threads

if TYPE_CHECKING:
    from ..devices import Device
    from ..models.model import Model


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
        if one is None or many is None or not one.aggregate_ips:
            return None
        return many.aggregate_ips / one.aggregate_ips

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
