"""A device's meter around one measurement: idle baseline first, then exactly the timed loop.

A :class:`MeterWindow` is what ``measure()`` calls at the edges of its timed loop, so the
reading covers the queries that are counted and nothing else (not the model load, not the
warm-up, not the record write). A meter that is missing or fails never costs the measurement:
the reading is None and ``reason`` says why, for the skip message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import MeterError, MeterUnavailable
from .base import EnergyReading, Meter, measure_idle
from .registry import idle_seconds, make_meter

if TYPE_CHECKING:
    from ..devices import Device


class MeterWindow:
    def __init__(self, meter: Meter | None, reason: str | None = None, idle_s: float = 0.0):
        self.meter = meter
        self.reason = reason if meter is None else None
        self.idle_s = idle_s
        self.reading: EnergyReading | None = None
        self._running = False

    @classmethod
    def for_device(cls, device: Device) -> MeterWindow:
        """The device's configured meter (a ConfigError still raises: the file is wrong)."""
        try:
            return cls(make_meter(device), idle_s=idle_seconds(device))
        except MeterUnavailable as exc:
            return cls(None, f"energy not measured on {device.name}: {exc}")

    def _drop(self, why: str) -> None:
        self.reason = f"energy not measured: {why}"
        self.close()
        self.meter = None

    def idle(self) -> None:
        """The idle baseline, when the meter asks for one (meter option idle_s)."""
        if self.meter is not None and self.idle_s > 0:
            try:
                measure_idle(self.meter, self.idle_s)
            except (MeterError, MeterUnavailable) as exc:
                self._drop(f"the idle baseline failed: {exc}")

    def __call__(self, edge: str) -> None:
        if self.meter is None:
            return
        if edge == "start":
            try:
                self.meter.start()
                self._running = True
            except (MeterError, MeterUnavailable) as exc:
                self._drop(f"the meter failed to start: {exc}")
        elif edge == "stop" and self._running:
            self._running = False
            try:
                self.reading = self.meter.stop()
            except MeterError as exc:
                self._drop(str(exc))

    def close(self) -> None:
        """Stop a window the workload left open (it raised mid-loop), then release the meter."""
        meter = self.meter
        if meter is None:
            return
        try:
            if self._running:
                self._running = False
                meter.stop()
        except MeterError:
            pass
        finally:
            meter.close()
