"""Running a workload under a meter so that a failing meter never costs the measurement.

The meter is stopped in ``finally`` whatever the workload does; a meter that is missing or
fails leaves the workload's result intact and says why there is no reading (the skip reason).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from .base import EnergyReading, Meter, MeterError, MeterUnavailable, measure_idle
from .integrate import crop
from .registry import make_meter

if TYPE_CHECKING:
    from ..devices import Device

T = TypeVar("T")


@dataclass
class Metered(Generic[T]):
    """A workload's result, and the energy over it or why there is none."""

    result: T
    reading: EnergyReading | None
    reason: str | None = None  # why there is no reading
    tail_s: float = 0.0  # time between the workload returning and the meter stopping


def open_meter(device: Device) -> tuple[Meter | None, str | None]:
    """The device's meter, or None and the reason (a ConfigError still raises: the file is wrong)."""
    try:
        return make_meter(device), None
    except MeterUnavailable as exc:
        return None, f"energy not measured on {device.name}: {exc}"


def run_metered(meter: Meter | None, workload: Callable[[], T], idle_s: float = 0.0,
                reason: str | None = None) -> Metered[T]:
    """Idle baseline (if asked), then the workload inside a meter window; the meter always stops."""
    if meter is None:
        return Metered(workload(), None, reason or "no meter")
    try:
        if idle_s > 0:
            measure_idle(meter, idle_s)
        meter.start()
    except (MeterError, MeterUnavailable) as exc:
        return Metered(workload(), None, f"energy not measured: the meter failed to start: {exc}")
    reading: EnergyReading | None = None
    failure: str | None = None
    returned = 0.0
    try:
        result = workload()
        returned = time.perf_counter()
    finally:
        try:
            reading = meter.stop()
        except MeterError as exc:
            failure = f"energy not measured: {exc}"
    tail = time.perf_counter() - returned
    return Metered(result, reading, failure, tail_s=tail)


def align_to_loop(metered: Metered[object], loop_s: float) -> EnergyReading | None:
    """The reading cropped to the last ``loop_s`` seconds before the workload returned.

    For a timed loop measured inside a larger call (model load, warm-up before it; the record
    write after it), this keeps the loop and says how it was aligned.
    """
    reading = metered.reading
    if reading is None:
        return None
    end = reading.duration_s - metered.tail_s
    if loop_s >= end:
        return reading
    return crop(reading, end - loop_s, end,
                f"window aligned to the timed loop ({loop_s:.3g} s of {reading.duration_s:.3g} s metered) "
                f"from the loop's wall time; the record write after the loop shifts it by a few ms")
