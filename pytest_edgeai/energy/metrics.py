"""Energy figures in the record's metric shape: value, unit, method (measured or estimated), source.

Joules per inference use the total energy over the window (what the device drew, as MLPerf
Power reports it); where an idle baseline was measured, the figure above idle is given beside
it. Per-dollar throughput needs no meter: it divides measured throughput by the configured price.
"""

from __future__ import annotations

import math
from typing import Any

from ..results.record import metric
from .base import EnergyReading

Metric = dict[str, Any]


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
    if reading is None or inferences <= 0:
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
    record.extra["energy"] = {"measured": True, **reading.to_dict()}
    record.warnings.extend(f"energy: {w}" for w in reading.warnings)
