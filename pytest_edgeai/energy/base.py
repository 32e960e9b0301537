"""What every power meter gives back, and the contract a meter implements.

A reading says how much energy was used over a window, what the sensor covers ("CPU package
0", "GPU 0 board", "VDD_IN module rail"), how often it updates, whether the figure is an
estimate, and what weakens it. A suite records all of it so a figure is never read without
its conditions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import EdgeAIError, MeasurementError, MeterError

SampleKind = Literal["watts", "joules"]


@dataclass(frozen=True)
class IdleBaseline:
    """Mean power with nothing running, measured just before the workload."""

    idle_w: float
    duration_s: float
    estimated: bool
    warnings: tuple[str, ...] = ()


@dataclass
class EnergyReading:
    """Energy over one window, with what the sensor covers and what weakens the figure.

    ``samples`` are ``(t_s, watts)`` or ``(t_s, cumulative_joules)`` (see ``sample_kind``), with
    ``t_s`` measured from the start of the window.
    """

    joules: float
    mean_w: float
    peak_w: float | None
    duration_s: float
    samples: list[tuple[float, float]]
    sample_kind: SampleKind
    source: str
    covers: str
    update_period_s: float
    estimated: bool
    warnings: list[str] = field(default_factory=list)
    idle_w: float | None = None
    idle_duration_s: float | None = None
    above_idle_joules: float | None = None
    above_idle_mean_w: float | None = None

    def with_baseline(self, baseline: IdleBaseline) -> EnergyReading:
        """This reading with the idle power subtracted, reported beside the total."""
        above = self.joules - baseline.idle_w * self.duration_s
        warnings = list(self.warnings) + [f"idle baseline: {w}" for w in baseline.warnings]
        if above < 0:
            warnings.append(f"energy above idle is negative ({above:.4g} J): the workload drew less "
                            f"than the {baseline.idle_w:.4g} W idle baseline; the sensor is too coarse "
                            f"or the idle period was not idle")
        return replace(self, idle_w=baseline.idle_w, idle_duration_s=baseline.duration_s,
                       above_idle_joules=above, above_idle_mean_w=above / self.duration_s,
                       estimated=self.estimated or baseline.estimated, warnings=warnings)

    def to_dict(self) -> dict[str, Any]:
        """The reading as it goes into a result record (JSON-ready)."""
        data = asdict(self)
        data["samples"] = [list(s) for s in self.samples]
        return data


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
