"""How far the concurrency suite goes under each measurement profile.

The window and timeouts come from the profile itself; the tenant limit, memory budget and search
steps grow with it (quick keeps the whole CPU suite near a minute on 2 cores).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .memory import MIB
from .tenants import Window

if TYPE_CHECKING:
    from ..measure.profiles import Profile


@dataclass(frozen=True)
class ConcurrencyPlan:
    max_tenants: int  # the tenant sweep's limit (1, 2, 4, ... up to it)
    capacity_max_tenants: int  # the memory probe's cap on tenants
    capacity_budget_mb: int  # the memory probe's budget (never above what the device has)
    server_search_steps: int  # bisection steps of the LoadGen Server search
    switch_rounds: int  # rounds of alternation for the model-switch measurement

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def budget_bytes(self, available: int) -> int:
        return min(self.capacity_budget_mb * MIB, available)


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
