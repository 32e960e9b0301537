"""Device: one configured accelerator, and which of them are attached now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .claims import ANY_MODEL, ClaimSpec
from .errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from .backends.base import Availability
    from .config import Config

KINDS = ("cpu", "gpu", "edgetpu", "ncs2", "npu", "jetson")
TIERS = ("device", "edge", "cloud")


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


def probe(device: Device) -> Availability:
    """Ask the device's backend whether it is attached; never raises for a missing runtime."""
    from .backends.base import Availability, get_backend

    try:
        return get_backend(device.backend).probe(device)
    except ConfigError as exc:
        return Availability(False, str(exc))
    except Exception as exc:  # a vendor runtime failing in its own probe
        return Availability(False, f"{device.backend} probe failed: {type(exc).__name__}: {exc}")


def select(config: Config, requested: list[str],
           probe_all: Callable[[list[Device]], dict[str, Availability]] | None = None) -> list[Device]:
    """Resolve --device values: names, kinds, 'all', or 'auto' (configured and attached, as ``probe_all``
    says: lab.runners.probe_isolated, so a probe that crashes cannot take the caller down; this process
    when it is None)."""
    chosen: dict[str, Device] = {}
    for word in requested:
        if word == "all":
            chosen.update(config.devices)
        elif word == "auto":
            candidates = list(config.devices.values())
            found = probe_all(candidates) if probe_all else {d.name: probe(d) for d in candidates}
            chosen.update({d.name: d for d in candidates if found[d.name].attached})
        elif word in config.devices:
            chosen[word] = config.devices[word]
        elif word in KINDS and any(d.kind == word for d in config.devices.values()):
            chosen.update({n: d for n, d in config.devices.items() if d.kind == word})
        else:
            where = f" in {config.path}" if config.path else " (no devices.toml: only the built-in 'cpu')"
            raise ConfigError([
                f"--device {word}: no such device{where}"
                f"{did_you_mean(word, list(config.devices) + list(KINDS))}; "
                f"configured: {', '.join(sorted(config.devices))}; also: all, auto"
            ])
    return list(chosen.values())
