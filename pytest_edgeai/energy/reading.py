"""What a meter gives back, and the figures made from it.

A reading says how much energy was used over a window, what the sensor covers ("CPU package
0", "GPU 0 board", "VDD_IN module rail"), how often it updates, whether the figure is an
estimate, and what weakens it. A suite records all of it so a figure is never read without
its conditions.

From samples to joules (pure functions, so every case is easy to test): counters (RAPL, the NVML
energy counter, the CPU-time estimate) give cumulative joules, and energy is the difference,
interpolated linearly at the window's edges, and extended at the mean power between the first and last
read where a stream's reads do not reach them; power sensors give watts, and energy is the trapezoid
of the samples, holding the first and last value out to the edges (a sensor reports what it last saw).

The record's figures: joules per inference use the total energy over the window (what the device
drew, as MLPerf Power reports it); where an idle baseline was measured, the figure above idle is
given beside it. Per-dollar throughput needs no meter: it divides measured throughput by the
configured price.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from statistics import median
from typing import Any, Literal

import numpy as np

from ..results.record import metric

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
        return counter_at(t1, t, v) - counter_at(t0, t, v)
    inside = (t > t0) & (t < t1)
    ts = np.concatenate(([t0], t[inside], [t1]))
    ws = np.interp(ts, t, v)
    return float(np.sum((ws[1:] + ws[:-1]) * np.diff(ts)) / 2.0)


def counter_at(t_s: float, t: np.ndarray, v: np.ndarray) -> float:
    """A cumulative counter at ``t_s``: interpolated between reads; before the first read or after the last
    (a stream meter reads at its own pace, not at the window's edges) extended at the mean power between
    them, since holding the counter there would count no energy for that part of the window."""
    if t.size >= 2 and t[-1] > t[0] and not t[0] <= t_s <= t[-1]:
        edge = 0 if t_s < t[0] else -1
        return float(v[edge] + (v[-1] - v[0]) / (t[-1] - t[0]) * (t_s - t[edge]))
    return float(np.interp(t_s, t, v))


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
        first, last = min((s[0] for s in samples), default=0.0), max((s[0] for s in samples), default=0.0)
        if len(samples) >= 2 and (first > 0.0 or last < duration_s):
            warnings.append(f"the counter was read first at {first:.3g} s and last at {last:.3g} s of the "
                            f"{duration_s:.3g} s window: the energy outside those reads is extrapolated at "
                            f"the mean power between them")
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


Metric = dict[str, Any]


def unusable(reading: EnergyReading) -> str | None:
    """Why no energy figure can rest on ``reading``, or None: a workload always draws energy, so zero or less
    (a counter that did not move or went backwards, a sensor that read 0 W) is a broken reading, never a figure
    a claim on joules could be met with."""
    if reading.joules > 0:
        return None
    return (f"{reading.source} gave {reading.joules:.4g} J over the {reading.duration_s:.3g} s window "
            f"(a counter that did not move or went backwards, or a sensor reading 0 W): no energy figure rests on it")


def energy_metrics(reading: EnergyReading | None, inferences: int, throughput_ips: float,
                   price_usd: float | None, queries: int | None = None) -> dict[str, Metric]:
    """The energy suite's metrics; those that need a missing input (meter, price) are left out.

    ``inferences`` counts samples inferred during the reading's window; ``queries`` counts the
    calls that carried them (batches), defaulting to ``inferences``.
    """
    out: dict[str, Metric] = {}
    if price_usd:
        out["inferences_per_s_per_usd"] = metric(
            throughput_ips / price_usd, "inferences/s/USD", method="derived", source=
            f"measured throughput {throughput_ips:.4g} inferences/s / price_usd {price_usd:g} from devices.toml")
    if reading is None or inferences <= 0 or unusable(reading):
        return out
    method = "estimated" if reading.estimated else "measured"
    where = f"{reading.source}; covers {reading.covers}; {reading.duration_s:.3g} s window"
    queries = queries or inferences
    j_per_inf = reading.joules / inferences
    out["joules_per_inference"] = metric(j_per_inf, "J", method=method,
                                         source=f"{reading.joules:.4g} J / {inferences} inferences; {where}")
    out["mj_per_query"] = metric(reading.joules / queries * 1e3, "mJ", method=method,
                                 source=f"{reading.joules:.4g} J / {queries} queries; {where}")
    out["mean_w"] = metric(reading.mean_w, "W", method=method, source=where)
    if reading.peak_w is not None:
        out["peak_w"] = metric(reading.peak_w, "W", method=method,
                               source=f"highest sample or counter slope; {where}")
    if reading.mean_w > 0:
        out["inferences_per_s_per_w"] = metric(
            throughput_ips / reading.mean_w, "inferences/s/W", method=method,
            source=f"throughput {throughput_ips:.4g} inferences/s / mean {reading.mean_w:.4g} W; {where}")
    if reading.idle_w is not None and reading.above_idle_joules is not None:
        idle = f"idle baseline {reading.idle_w:.4g} W over {reading.idle_duration_s or 0:.3g} s; {where}"
        out["idle_w"] = metric(reading.idle_w, "W", method=method, source=idle)
        out["mean_w_above_idle"] = metric(reading.above_idle_mean_w or 0.0, "W", method=method, source=idle)
        out["joules_per_inference_above_idle"] = metric(reading.above_idle_joules / inferences, "J",
                                                        method=method, source=idle)
    return {k: v for k, v in out.items() if math.isfinite(v["value"])}


def record_energy(record: Any, reading: EnergyReading | None, reason: str | None, inferences: int,
                  throughput_ips: float, price_usd: float | None, queries: int | None = None) -> None:
    """Put the energy metrics, the reading (or why there is none) and its warnings into a record."""
    record.metrics.update(energy_metrics(reading, inferences, throughput_ips, price_usd, queries))
    if reading is None:
        record.extra["energy"] = {"measured": False, "reason": reason}
        return
    why = unusable(reading)
    if why is not None:  # kept whole under "reading", so what the meter said is not lost
        record.extra["energy"] = {"measured": False, "reason": f"energy not measured: {why}",
                                  "reading": reading.to_dict()}
    else:
        record.extra["energy"] = {"measured": True, **reading.to_dict()}
    record.warnings.extend(f"energy: {w}" for w in reading.warnings)
