"""From samples to joules over a window: pure functions, so every case is easy to test.

Counters (RAPL, the NVML energy counter, the CPU-time estimate) give cumulative joules:
energy is the difference, interpolated linearly at the window's edges. Power sensors give
watts: energy is the trapezoid of the samples, holding the first and last value out to the
edges (a sensor reports what it last saw).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

import numpy as np

from .base import EnergyReading, SampleKind


@dataclass(frozen=True)
class SensorInfo:
    """What a meter says about itself, copied into every reading."""

    source: str
    covers: str
    update_period_s: float | None  # None: unknown, taken from the samples' spacing
    estimated: bool = False


def energy_between(samples: list[tuple[float, float]], kind: SampleKind, t0: float, t1: float) -> float:
    """Joules between t0 and t1."""
    t = np.array([s[0] for s in samples], dtype=float)
    v = np.array([s[1] for s in samples], dtype=float)
    if kind == "joules":
        return float(np.interp(t1, t, v) - np.interp(t0, t, v))
    inside = (t > t0) & (t < t1)
    ts = np.concatenate(([t0], t[inside], [t1]))
    ws = np.interp(ts, t, v)
    return float(np.sum((ws[1:] + ws[:-1]) * np.diff(ts)) / 2.0)


def peak_power(samples: list[tuple[float, float]], kind: SampleKind) -> float | None:
    """Highest power seen: the largest sample, or the largest counter slope between samples."""
    if kind == "watts":
        return max((w for _, w in samples), default=None)
    if len(samples) < 3:  # the start and stop reads alone give the mean, not a peak
        return None
    slopes = [(j1 - j0) / (t1 - t0) for (t0, j0), (t1, j1) in zip(samples, samples[1:]) if t1 > t0]
    return max(slopes, default=None)


def build_reading(samples: list[tuple[float, float]], kind: SampleKind, duration_s: float,
                  info: SensorInfo, warnings: list[str] | None = None) -> EnergyReading:
    """The reading for the window [0, duration_s], with the warnings the samples call for."""
    warnings = list(warnings or [])
    period = info.update_period_s
    if period is None:
        gaps = [b[0] - a[0] for a, b in zip(samples, samples[1:])]
        period = median(gaps) if gaps else duration_s
    joules = energy_between(samples, kind, 0.0, duration_s)
    if duration_s < period:
        warnings.append(f"window {duration_s:.3g} s shorter than the sensor's update period {period:.3g} s: "
                        f"the figure rests on at most one sensor update")
    if kind == "joules":
        if joules == 0.0:
            warnings.append(f"counter did not move over {duration_s:.3g} s: the sensor may be stale, "
                            f"disabled, or coarser than the window")
        elif joules < 0.0:
            warnings.append(f"counter went backwards by {-joules:.4g} J: it was reset during the window")
    else:
        inside = sum(1 for t, _ in samples if 0.0 <= t <= duration_s)
        if inside < 2:
            warnings.append(f"only {inside} power sample(s) in the {duration_s:.3g} s window: the mean is "
                            f"one reading held across the window")
    return EnergyReading(
        joules=joules, mean_w=joules / duration_s if duration_s > 0 else float("nan"),
        peak_w=peak_power(samples, kind), duration_s=duration_s, samples=list(samples),
        sample_kind=kind, source=info.source, covers=info.covers, update_period_s=period,
        estimated=info.estimated, warnings=warnings)
