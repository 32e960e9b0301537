"""Per-tenant thread settings: N sessions each using every core oversubscribe the CPU.

onnxruntime's intra-op pool defaults to one thread per physical core in every session, so N
tenants run N x cores threads. Unless devices.toml pins a positive thread count, each tenant
gets max(1, cores // N). The setting and where it came from go into the record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..devices import Device

# The option each backend reads for its per-session CPU thread count.
# (devices.toml documents each; OpenVINO splits cores by streams instead, so it is left to its hint)
THREAD_OPTION: dict[str, str] = {"onnxruntime": "intra_op_num_threads", "litert": "num_threads",
                                 "torch": "num_threads"}


@dataclass(frozen=True)
class ThreadPlan:
    """Threads each tenant's session gets, and why."""

    threads_per_tenant: int | None  # None: the backend has no per-session thread knob we know
    source: str
    cores: int

    def to_dict(self) -> dict[str, object]:
        return {"threads_per_tenant": self.threads_per_tenant, "source": self.source, "cores": self.cores}


def usable_cores() -> int:
    """CPUs this process may run on (affinity), not the host's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_threads(device: Device, tenants: int, cores: int | None = None) -> tuple[Device, ThreadPlan]:
    """The device each tenant loads on (thread option set) and the plan to record."""
    cores = cores or usable_cores()
    key = THREAD_OPTION.get(device.backend)
    if key is None:
        return device, ThreadPlan(None, f"{device.backend}: its own default (no per-session thread option known)", cores)
    configured = device.options.get(key)
    if isinstance(configured, int) and configured > 0:
        return device, ThreadPlan(configured, f"devices.{device.name}.options.{key}", cores)
    per_tenant = max(1, cores // tenants)
    return (replace(device, options={**device.options, key: per_tenant}),
            ThreadPlan(per_tenant, f"max(1, {cores} cores // {tenants} tenants)", cores))


def split_device(device: Device, parts: int, cores: int | None = None) -> list[Device]:
    """One device seen as ``parts`` devices, each with its share of the cores (placement tests)."""
    shared, _ = plan_threads(device, parts, cores)
    return [replace(shared, name=f"{device.name}#{i}") for i in range(parts)]
