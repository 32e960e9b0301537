"""Results of this package in the record's metric shape: {value, unit, method, source}."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..results.record import metric
from .memory import MIB

if TYPE_CHECKING:
    from .capacity import CapacityResult
    from .dispatch import PlacementResult
    from .models_together import ConcurrentModelsResult
    from .switching import SwitchResult
    from .tenants import Step

Metrics = dict[str, dict[str, Any]]


def _worst(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return max(values) if values else None


def step_metrics(step: Step) -> Metrics:
    """Aggregate throughput, the worst tenant's latency and fairness of a step that succeeded."""
    how = f"{step.tenants} {step.mode} tenants together over a common {step.window_s:g} s window"
    fair = step.fairness()
    rows = step.to_dict()["per_tenant"]
    return {
        "throughput_ips": metric(step.aggregate_ips, "inferences/s", f"sum of tenants' completions / window; {how}"),
        "tenants": metric(step.tenants, "tenants", how),
        "tenant_throughput_min_ips": metric(min(r["throughput_ips"] for r in rows), "inferences/s", how),
        "latency_p50_ms": metric(_worst(rows, "latency_p50_ms"), "ms",
                                 f"the worst tenant's p50; {how}"),
        "latency_p90_ms": metric(step.worst_p90_ms(), "ms", f"the worst tenant's p90; {how}"),
        "latency_p99_ms": metric(_worst(rows, "latency_p99_ms"), "ms",
                                 f"the worst tenant's p99; {how}"),
        "jain_index": metric(fair.jain, "ratio", f"Jain's fairness index of tenants' throughputs; {how}"),
        "min_share": metric(fair.min_share, "fraction", f"the least-served tenant's share; {how}"),
        "max_share": metric(fair.max_share, "fraction", f"the best-served tenant's share; {how}"),
    }


def capacity_metrics(result: CapacityResult) -> Metrics:
    """The memory line: footprint, predicted and observed maximum tenants."""
    how = f"loads in a child process, {result.probe_source}; {result.stopped}"
    fp = result.footprint_bytes
    budget = f"budget {result.plan.budget_bytes / MIB:.0f} MiB, cap {result.plan.max_tenants} tenants"
    return {
        "tenant_footprint_mb": metric(None if fp is None else fp / MIB, "MiB",
                                      f"memory added by the second tenant (load + one run); {how}"),
        "runtime_overhead_mb": metric(result.overhead_bytes / MIB, "MiB",
                                      f"the first tenant's extra over the second (runtime one-off); {how}"),
        "available_mb": metric(result.available_bytes / MIB, "MiB", result.available_source),
        "predicted_max_tenants": metric(result.predicted_device_max, "tenants",
                                        f"(available - overhead) / footprint, available from "
                                        f"{result.available_source}", method="predicted"),
        "predicted_budget_tenants": metric(result.predicted_budget_max, "tenants",
                                           f"(budget - overhead) / footprint; {budget}", method="predicted"),
        "observed_max_tenants": metric(result.observed_max, "tenants",
                                       f"tenants loaded and run within the budget; {budget}; {how}"),
        "prediction_error": metric(result.prediction_error, "fraction",
                                   "|predicted - observed| / observed, within the budget", method="derived"),
    }


def placement_metrics(result: PlacementResult) -> Metrics:
    best = result.best_single
    how = f"shortest-queue dispatch over {', '.join(result.together.workers)}"
    return {
        "throughput_ips": metric(result.together.throughput_ips, "inferences/s", how),
        "best_single_ips": metric(best.throughput_ips, "inferences/s",
                                  f"{best.workers[0]} alone through the same dispatcher"),
        "placement_speedup": metric(result.speedup, "x", f"{how} / best single device", method="derived"),
    }


def models_metrics(result: ConcurrentModelsResult) -> Metrics:
    how = f"{' + '.join(result.models)} together vs each alone, same window length"
    out: Metrics = {"concurrency_gain": metric(result.gain, "x", f"sum of together/alone throughputs; {how}",
                                               method="derived"),
                    "throughput_ips": metric(result.together.aggregate_ips, "inferences/s",
                                             f"all models' inferences together; {how}")}
    for name, alone, ips in zip(result.models, result.alone, result.together.tenant_ips()):
        out[f"{name}_alone_ips"] = metric(alone.aggregate_ips, "inferences/s", f"{name} alone on the device")
        out[f"{name}_together_ips"] = metric(ips, "inferences/s", f"{name} while the others run")
    return out


def switching_metrics(result: SwitchResult) -> Metrics:
    how = f"median over {result.rounds} rounds, alternating vs each model alone ({result.label})"
    return {"switch_overhead_ms": metric(result.mean_overhead_ms, "ms", how, method="derived"),
            **{f"{m}_switch_overhead_ms": metric(v, "ms", how, method="derived")
               for m, v in result.overhead_ms.items()}}
