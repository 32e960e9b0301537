"""Concurrent model execution: different models on one device at once, against each alone.

Each model alone gets the whole device (its thread plan for one tenant); together they share it
(each gets its share of the cores). ``gain`` = sum over models of throughput together / alone:
1.0 is what perfect time-slicing would give, above 1 the device does more running them at once
(Hao et al. report up to 3x on GPU edge devices, 10x on EdgeTPUs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .tenants import Step, TenantRunner, TenantSpec, Window, run_step
from .threads import plan_threads

if TYPE_CHECKING:
    from ..devices import Device
    from ..models.model import Model


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
        return [t / a.aggregate_ips for t, a in zip(self.together.tenant_ips(), self.alone)]

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
