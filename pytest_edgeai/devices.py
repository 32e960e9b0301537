"""Device: one configured accelerator, as plain data.

A leaf: it imports nothing of ours at run time, so every layer (config, backends, meters, studies)
can name a Device without an import cycle. Which devices are attached is the backends' question
(``backends.base.probe``); which a run uses, ``selection.select``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .claims import ClaimSpec

KINDS = ("cpu", "gpu", "edgetpu", "ncs2", "npu", "jetson")
TIERS = ("device", "edge", "cloud")
ANY_MODEL = "*"  # a claim's model key that applies to every model without one of its own


@dataclass(frozen=True)
class Device:
    """A configured accelerator: how to reach it, what it costs, what it must meet."""

    name: str
    kind: str
    backend: str
    tier: str = "device"
    options: dict[str, Any] = field(default_factory=dict)
    memory_mb: float | None = None
    price_usd: float | None = None
    tdp_w: float | None = None
    hardware_id: str = ""
    description: str = ""
    meter: dict[str, Any] = field(default_factory=lambda: {"source": "none"})
    claims: tuple[ClaimSpec, ...] = ()

    def claim(self, suite: str, name: str, model: str) -> ClaimSpec | None:
        """The threshold for ``model``, falling back to the device-wide one ('*')."""
        fallback = None
        for spec in self.claims:
            if spec.suite == suite and spec.name == name:
                if spec.model == model:
                    return spec
                if spec.model == ANY_MODEL:
                    fallback = spec
        return fallback

    def identity(self) -> dict[str, Any]:
        """What makes two results comparable: the device, not the host's jitter."""
        return {"name": self.name, "kind": self.kind, "backend": self.backend,
                "hardware_id": self.hardware_id}

    def describe(self) -> dict[str, Any]:
        """The device's part of a result record."""
        return {**self.identity(), "tier": self.tier, "options": dict(self.options),
                "memory_mb": self.memory_mb, "price_usd": self.price_usd, "tdp_w": self.tdp_w}


def builtin_cpu() -> Device:
    """The device used when there is no devices.toml."""
    return Device(name="cpu", kind="cpu", backend="onnxruntime",
                  description="the host CPU through onnxruntime (built-in default)")
