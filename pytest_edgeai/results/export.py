"""Export a run as pytest-benchmark JSON, so `pytest-benchmark compare` and its tooling read it.

One benchmark per record with latency samples. A query of batch b is one pytest-benchmark round of b
iterations, as its fixture times a round of several calls: the data are seconds per inference (a query's
latency over b), so OPS is inferences/s, the figure the rest of pytest-edgeai reports, not queries/s.
Statistics are computed as pytest-benchmark's own Stats computes them (quartiles by its rules, outliers
beyond 1.5 IQR and beyond one standard deviation). Records without samples are left out and named.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timezone
from typing import Any

from .record import Record
from .store import Run

FORMAT_VERSION = "5.1.0"  # the pytest-benchmark JSON layout this writes


def _quartiles(s: list[float]) -> tuple[float, float]:
    """Quartiles as pytest-benchmark computes them (Wikipedia's methods 2 for even n, 3 for odd n)."""
    n = len(s)
    if n == 1:
        return s[0], s[0]
    if n % 2 == 0:
        return statistics.median(s[: n // 2]), statistics.median(s[n // 2:])
    k, r = n // 4, n % 4
    if r == 1:
        return 0.25 * s[k - 1] + 0.75 * s[k], 0.75 * s[3 * k] + 0.25 * s[3 * k + 1]
    return 0.75 * s[k] + 0.25 * s[k + 1], 0.25 * s[3 * k + 1] + 0.75 * s[3 * k + 2]


def stats(data: list[float], iterations: int = 1) -> dict[str, Any]:
    """pytest-benchmark's Stats fields for ``data`` (seconds per iteration), data included."""
    s = sorted(data)
    mean = statistics.mean(s)
    stddev = statistics.stdev(s) if len(s) > 1 else 0.0
    q1, q3 = _quartiles(s)
    iqr = q3 - q1
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    ld15 = next(x for x in s if x >= lo)
    hd15 = next(x for x in reversed(s) if x <= hi)
    iqr_out = sum(1 for x in s if x < lo or x > hi)
    std_out = sum(1 for x in s if x < mean - stddev or x > mean + stddev)
    return {"min": s[0], "max": s[-1], "mean": mean, "stddev": stddev, "rounds": len(s),
            "median": statistics.median(s), "iqr": iqr, "q1": q1, "q3": q3, "iqr_outliers": iqr_out,
            "stddev_outliers": std_out, "outliers": f"{std_out};{iqr_out}", "ld15iqr": ld15,
            "hd15iqr": hd15, "ops": 1.0 / mean if mean else 0.0, "total": sum(s), "data": data,
            "iterations": iterations}


def _name(r: Record) -> str:
    batch = r.scenario.get("batch")
    params = "-".join(str(p) for p in (r.device.get("name"), r.model.get("name"), r.scenario.get("name"),
                                        f"b{batch}" if batch is not None else None) if p)
    return f"{r.test_id.split('[')[0].split('::')[-1]}[{params}]"


def _batch(r: Record) -> int:
    """The record's batch, 1 where it is not a positive whole number (a hand-edited or damaged record)."""
    batch = r.scenario.get("batch")
    return batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else 1


def _samples(r: Record) -> list[float] | None:
    """The latency samples in ns, or None when any is not a finite positive number."""
    samples = r.samples.get("latency_ns") if isinstance(r.samples, dict) else None
    if not isinstance(samples, list) or not samples:
        return None
    ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < float("inf") for x in samples)
    return [float(x) for x in samples] if ok else None


def benchmark(r: Record) -> dict[str, Any]:
    name = _name(r)
    batch = _batch(r)
    module = r.test_id.split("::")[0]
    return {"group": r.suite, "name": name, "fullname": f"{module}::{name}",
            "params": {"device": r.device.get("name"), "model": r.model.get("name"),
                       "scenario": r.scenario.get("name"), "batch": r.scenario.get("batch")},
            "param": name[name.index("[") + 1:-1],
            "extra_info": {"record_id": r.id, "run_id": r.run_id, "backend": r.backend,
                           "metrics": {k: v.get("value") for k, v in r.metrics.items()}},
            "options": {"timer": "perf_counter_ns", "source": "pytest-edgeai"},
            "stats": stats([ns / 1e9 / batch for ns in _samples(r) or []], batch)}


def to_pytest_benchmark(run: Run) -> tuple[dict[str, Any], list[str]]:
    """The JSON document, and the records left out (no samples, or failed) with why."""
    env = run.meta.get("environment") or {}
    git = env.get("git") or {}
    skipped, benches = [], []
    for r in run.records:
        if r.status != "ok" or _samples(r) is None:
            why = ("failed" if r.status != "ok" else "no latency samples" if not (r.samples or {}).get("latency_ns")
                   else "latency samples that are not all positive numbers")
            skipped.append(f"{r.id} ({r.suite} {r.model.get('name')} {r.scenario.get('name')}): {why}")
            continue
        benches.append(benchmark(r))
    started = run.meta.get("started")
    when = (datetime.fromtimestamp(started, timezone.utc) if isinstance(started, (int, float))
            else datetime.now(timezone.utc))
    doc = {
        "machine_info": {"node": env.get("host"), "processor": env.get("cpu_model"), "machine": env.get("machine"),
                         "python_version": env.get("python"), "system": env.get("platform"),
                         "cpu": {"brand_raw": env.get("cpu_model"), "count": env.get("cpu_logical_cores")},
                         "runtimes": env.get("runtimes") or {}},
        "commit_info": {"id": git.get("commit"), "dirty": git.get("dirty"), "project": "pytest-edgeai",
                        "branch": None, "tag": git.get("tag")},
        "benchmarks": benches,
        "datetime": when.isoformat(),
        "version": FORMAT_VERSION,
    }
    return doc, skipped
