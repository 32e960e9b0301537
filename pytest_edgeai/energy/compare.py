"""Claims that compare devices: this device's figure over another device's latest one.

The other device's figure comes from the records of the current run first, then from earlier
runs in the store, newest first. When there is none, the claim is skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..claims import ClaimResult, ClaimSpec, judge


@dataclass(frozen=True)
class Found:
    value: float
    record_id: str
    where: str  # "this run" or the run directory


def latest_metric(records: Iterable[Any], device: str, model: str, metric: str, suite: str = "energy",
                  where: str = "this run") -> Found | None:
    """The newest ok record of ``device`` and ``model`` in ``suite`` that has ``metric``."""
    best = None
    for rec in records:
        value = rec.metric(metric)
        if (rec.suite == suite and rec.status == "ok" and rec.device.get("name") == device
                and rec.model.get("name") == model and isinstance(value, (int, float))
                and (best is None or rec.created > best[0])):
            best = (rec.created, Found(float(value), rec.id, where))
    return best[1] if best else None


def _earlier_runs(report_dir: Path, skip: Path | None) -> Iterator[tuple[Path, list[Any]]]:
    from ..results.store import list_runs, load_run

    for path in reversed(list_runs(report_dir)):
        if skip is None or path.resolve() != skip.resolve():
            yield path, load_run(path).records


def find_against(current: Iterable[Any], report_dir: Path | None, current_run: Path | None,
                 device: str, model: str, metric: str) -> Found | None:
    """The other device's figure: this run first, then earlier runs newest first."""
    found = latest_metric(current, device, model, metric)
    if found is not None or report_dir is None:
        return found
    for path, records in _earlier_runs(report_dir, current_run):
        found = latest_metric(records, device, model, metric, where=str(path))
        if found is not None:
            return found
    return None


def judge_ratio(spec: ClaimSpec, device: str, model: str, mine: float | None, other: Found | None,
                metric: str) -> ClaimResult:
    """Judge ``mine / other`` against the threshold; a skip naming what is missing otherwise."""
    against = spec.extras.get("against")
    if not isinstance(against, str) or not against:
        return skipped(spec, device, model, f"{spec.name} for {model} on {device}: the claim needs "
                                          f"against = \"<device name>\" in devices.toml")
    if other is None:
        return skipped(spec, device, model, f"{spec.name} for {model} on {device}: no {metric} result for "
                                          f"device '{against}' and model {model} in this run or the run store; "
                                          f"run the energy suite on {against} first")
    if mine is None:
        return skipped(spec, device, model, f"{spec.name} for {model} on {device}: no {metric} on {device} "
                                          f"(is price_usd set?)")
    result = judge(spec, device, model, mine / other.value if other.value else None)
    result.message += f" against {against} ({other.value:.4g}, record {other.record_id} from {other.where})"
    return result


def skipped(spec: ClaimSpec, device: str, model: str, message: str) -> ClaimResult:
    return ClaimResult(suite=spec.suite, name=spec.name, model=model, device=device, threshold=spec.threshold,
                       observed=None, unit=spec.definition.unit, verdict="skip", message=message)
