"""A device's power meter: the contract a meter implements, which meter a device uses, and the
window a meter reads around one measurement.

Which meter: built-ins by name, and a lab's own through entry points. A lab adds a meter by
publishing ``name = "package.module:Factory"`` in the entry-point group ``pytest_edgeai.meters``.
A factory is called as ``Factory(device, **options)`` and returns a :class:`Meter`; if it has an
``OPTIONS`` tuple of :class:`~pytest_edgeai.keys.Key`, the options are checked
against it first, and ``DEFAULT_RATE_HZ`` replaces the usual 10 Hz when the lab did not set
``rate_hz`` (None: the meter picks once it knows its sensor); ``NEEDS`` names the device keys it
cannot work without (the estimate's ``tdp_w``), so devices.toml validation says so before anything
runs. The built-in meters are in
``energy/meters/``, one module each.

The window: idle baseline first, then exactly the timed loop. A :class:`MeterWindow` is what
``measure()`` calls at the edges of its timed loop, so the reading covers the queries that are
counted and nothing else (not the model load, not the warm-up, not the record write). A meter
that is missing or fails never costs the measurement: the reading is None and ``reason`` says
why, for the skip message.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .. import registry
from ..errors import ConfigError, MeterError, MeterUnavailable, did_you_mean
from .options import COMMON, validate
from .reading import EnergyReading, IdleBaseline

if TYPE_CHECKING:
    from ..devices import Device

ENTRY_POINT_GROUP = registry.METERS
NONE = "none"

BUILTIN: dict[str, str] = {
    "rapl": "pytest_edgeai.energy.meters.rapl:RaplMeter",
    "nvml": "pytest_edgeai.energy.meters.nvml:NvmlMeter",
    "jetson": "pytest_edgeai.energy.meters.jetson_power:open_jetson",
    "command": "pytest_edgeai.energy.meters.command:CommandMeter",
    "serial": "pytest_edgeai.energy.meters.serialport:SerialMeter",
    "estimate": "pytest_edgeai.energy.meters.estimate:EstimateMeter",
}


@runtime_checkable
class Meter(Protocol):
    """A power meter: start before the workload, stop after, close when done with it.

    ``baseline`` is None until :func:`measure_idle` sets it; afterwards ``stop`` reports the
    energy above idle beside the total. ``stop`` raises MeterError when the meter failed
    during the window, after it has stopped everything it started.
    """

    baseline: IdleBaseline | None

    def start(self) -> None: ...

    def stop(self) -> EnergyReading: ...

    def close(self) -> None: ...


def measure_idle(meter: Meter, seconds: float) -> IdleBaseline:
    """Read the meter for ``seconds`` with nothing running; later readings subtract it."""
    meter.baseline = None
    meter.start()
    try:
        time.sleep(seconds)
    finally:
        reading = meter.stop()
    baseline = IdleBaseline(idle_w=reading.mean_w, duration_s=reading.duration_s,
                            estimated=reading.estimated, warnings=tuple(reading.warnings))
    meter.baseline = baseline
    return baseline


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
    missing = [key for key in getattr(factory, "NEEDS", ()) if getattr(device, key, None) is None]
    if missing:
        raise ConfigError([f"devices.{device.name}.{key}: required by meter source '{source}'" for key in missing])
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
    meter: Meter = factory(device, **options)
    return meter


def failure(exc: Exception) -> str:
    """A meter's exception as the reason: ours say what happened; a vendor's is named by its type too."""
    return str(exc) if isinstance(exc, (MeterError, MeterUnavailable)) else f"{type(exc).__name__}: {exc}"


class MeterWindow:
    def __init__(self, meter: Meter | None, reason: str | None = None, idle_s: float = 0.0):
        self.meter = meter
        self.reason = reason if meter is None else None
        self.idle_s = idle_s
        self.reading: EnergyReading | None = None
        self._running = False

    @classmethod
    def for_device(cls, device: Device) -> MeterWindow:
        """The device's configured meter (a ConfigError still raises: the file is wrong). Any other failure to
        open it (a vendor's own exception: NVML's for a GPU that fell off the bus, a lab meter's) is the reason
        energy is not measured, never the end of the measurement."""
        try:
            return cls(make_meter(device), idle_s=idle_seconds(device))
        except ConfigError:
            raise
        except MeterUnavailable as exc:
            return cls(None, f"energy not measured on {device.name}: {exc}")
        except Exception as exc:  # a meter never costs the measurement
            return cls(None, f"energy not measured on {device.name}: the meter could not be opened: {failure(exc)}")

    def _drop(self, why: str) -> None:
        self.reason = f"energy not measured: {why}"
        self.close()
        self.meter = None

    def idle(self) -> None:
        """The idle baseline, when the meter asks for one (meter option idle_s)."""
        if self.meter is not None and self.idle_s > 0:
            try:
                measure_idle(self.meter, self.idle_s)
            except Exception as exc:  # a meter's failure, ours or its vendor's: the reason, not the end
                self._drop(f"the idle baseline failed: {failure(exc)}")

    def __call__(self, edge: str) -> None:
        if self.meter is None:
            return
        if edge == "idle":
            self.idle()
        elif edge == "start":
            try:
                self.meter.start()
                self._running = True
            except Exception as exc:
                self._drop(f"the meter failed to start: {failure(exc)}")
        elif edge == "stop" and self._running:
            self._running = False
            try:
                self.reading = self.meter.stop()
            except Exception as exc:
                self._drop(failure(exc))

    def close(self) -> None:
        """Stop a window the workload left open (it raised mid-loop), then release the meter."""
        meter = self.meter
        if meter is None:
            return
        try:
            if self._running:
                self._running = False
                meter.stop()
        except Exception:  # the window is already lost; what matters now is releasing the meter
            pass
        finally:
            meter.close()
