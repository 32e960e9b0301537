"""Which meter a device uses: built-ins by name, and a lab's own through entry points.

A lab adds a meter by publishing ``name = "package.module:Factory"`` in the entry-point group
``pytest_edgeai.meters``. A factory is called as ``Factory(device, **options)`` and returns a
:class:`~pytest_edgeai.energy.base.Meter`; if it has an ``OPTIONS`` tuple of
:class:`~pytest_edgeai.energy.options.Option`, the options are checked against it first, and
``DEFAULT_RATE_HZ`` replaces the usual 10 Hz when the lab did not set ``rate_hz`` (None: the
meter picks once it knows its sensor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import registry
from ..errors import ConfigError, MeterUnavailable, did_you_mean
from .base import Meter
from .options import COMMON, validate

if TYPE_CHECKING:
    from ..devices import Device

ENTRY_POINT_GROUP = "pytest_edgeai.meters"
NONE = "none"

BUILTIN: dict[str, str] = {
    "rapl": "pytest_edgeai.energy.rapl:RaplMeter",
    "nvml": "pytest_edgeai.energy.nvml:NvmlMeter",
    "jetson": "pytest_edgeai.energy.jetson:open_jetson",
    "command": "pytest_edgeai.energy.command:CommandMeter",
    "serial": "pytest_edgeai.energy.serialport:SerialMeter",
    "estimate": "pytest_edgeai.energy.estimate:EstimateMeter",
}


def known_sources() -> list[str]:
    """Every meter source a devices.toml may name."""
    return [NONE, *registry.names(BUILTIN, ENTRY_POINT_GROUP)]


def meter_factory(source: str, where: str) -> Any:
    """The class (or callable) registered for ``source``; ConfigError naming the key otherwise."""
    factory = registry.load(source, BUILTIN, ENTRY_POINT_GROUP)
    if factory is None:
        raise ConfigError([f"{where}.source: unknown meter '{source}'{did_you_mean(source, known_sources())}; "
                           f"known: {', '.join(known_sources())}"])
    return factory


def meter_options(device: Device) -> tuple[str, dict[str, Any]]:
    """The device's meter source and its checked options (defaults filled in)."""
    where = f"devices.{device.name}.meter"
    table = dict(device.meter or {})
    source = table.pop("source", NONE)
    if not isinstance(source, str):
        raise ConfigError([f"{where}.source: {source!r} is not a string; known: {', '.join(known_sources())}"])
    if source == NONE:
        return source, validate(where, {k: v for k, v in table.items()}, COMMON)
    factory = meter_factory(source, where)
    declared = getattr(factory, "OPTIONS", None)
    if declared is None:  # a plug-in that checks its own options
        common = validate(where, {k: v for k, v in table.items() if k in ("idle_s", "rate_hz")}, COMMON)
        return source, {**table, **common}
    options = validate(where, table, COMMON + tuple(declared))
    if "rate_hz" not in table:  # a sensor that needs no fast sampling says so
        options["rate_hz"] = getattr(factory, "DEFAULT_RATE_HZ", options["rate_hz"])
    return source, options


def check_meter(device: Device) -> list[str]:
    """Problems in a device's meter table, for devices.toml validation (opens nothing)."""
    try:
        meter_options(device)
    except ConfigError as exc:
        return exc.problems
    return []


def idle_seconds(device: Device) -> float:
    """How long to measure the idle baseline before a workload (meter option ``idle_s``)."""
    return float(meter_options(device)[1]["idle_s"])


def make_meter(device: Device) -> Meter:
    """The device's meter, opened and checked; MeterUnavailable (the skip reason) when it cannot read here."""
    source, options = meter_options(device)
    if source == NONE:
        raise MeterUnavailable(f"device '{device.name}' has no power meter configured "
                               f"(devices.{device.name}.meter.source is 'none'; known sources: "
                               f"{', '.join(known_sources()[1:])})")
    options.pop("idle_s", None)
    factory = meter_factory(source, f"devices.{device.name}.meter")
    return factory(device, **options)


def adopt_registry(found: dict[str, str]) -> None:
    """In a child process: the parent's meters, a conftest's included (see lab.child)."""
    BUILTIN.update(found)
