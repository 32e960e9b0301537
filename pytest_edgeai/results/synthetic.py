"""Runs shaped like real ones, written through the real store: for benchmarks, tests and demos.

Every value here is generated, and each record says so in its warnings and ``extra``: nothing
produced by this module is a measurement.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..canary import FIELD as CANARY_FIELD
from ..measure.stats import summarize
from .compare import CANARY_SUITE
from .record import Record
from .store import RunStore

MODELS = ("mobilenet_v2", "inception_v4", "ssd_mobilenet_v1", "ssd_mobilenet_v2", "cnn_trad_fpool3")
BASE_MS = {"mobilenet_v2": 6.0, "inception_v4": 60.0, "ssd_mobilenet_v1": 20.0,
           "ssd_mobilenet_v2": 25.0, "cnn_trad_fpool3": 0.8}
NOTE = "synthetic record (pytest_edgeai.results.synthetic): generated, not measured"


def device(name: str = "cpu", kind: str = "cpu", backend: str = "onnxruntime") -> dict[str, Any]:
    return {"name": name, "kind": kind, "backend": backend, "hardware_id": "", "tier": "device",
            "options": {}, "memory_mb": None, "price_usd": None, "tdp_w": None}


def latency_record(model: str, scenario: str, batch: int, median_ms: float, rng: np.random.Generator,
                   count: int = 400, dev: dict[str, Any] | None = None, suite: str = "throughput",
                   runtime_version: str = "1.17.0") -> Record:
    """A single-stream or offline record whose metrics follow from lognormal latency samples."""
    ms = median_ms * rng.lognormal(0.0, 0.08, count)
    ns = (ms * 1e6).astype(np.int64).tolist()
    s = summarize(ns)
    lat = {"unit": "ms", "method": "measured", "source": NOTE}
    r = Record(suite=suite, test_id=f"suites/test_{suite}.py::test_{scenario}[{(dev or device())['name']}-{model}]",
               device=dev or device(), backend={"name": "onnxruntime", "runtime": "onnxruntime",
                                                "runtime_version": runtime_version},
               model={"name": model}, scenario={"name": scenario, "batch": batch})
    r.metrics = {
        "throughput_ips": {"value": batch * 1e3 / s.mean_ms, "unit": "inferences/s", "method": "measured",
                           "source": NOTE},
        "latency_mean_ms": {"value": s.mean_ms, **lat},
        "latency_p50_ms": {"value": s.median_ms, "ci95": list(s.median_ci95_ms), **lat},
        "latency_p90_ms": {"value": s.p90_ms, **lat},
        "latency_p99_ms": {"value": s.p99_ms, **lat},
        "latency_cv": {"value": s.cv, "unit": "ratio", "method": "measured", "source": NOTE},
    }
    r.samples["latency_ns"] = ns
    r.warnings.append(NOTE)
    return r


CANARY_MS = 1.0


def write_run(root: Path, slowdown: float = 1.0, release: str | None = None, started: float | None = None,
              seed: int = 0, batches: tuple[int, ...] = (1, 2, 4, 8), count: int = 400,
              dev: dict[str, Any] | None = None, models: tuple[str, ...] = MODELS, drift: float = 1.0,
              canary: bool = False, canary_drift: float | None = None, own_canary: float | None = None) -> Path:
    """One run directory like a throughput suite run of the whole zoo (``slowdown`` scales the release's
    latency; ``drift`` the machine's, canary included unless ``canary_drift`` says otherwise; ``canary``
    writes the reference workload's record, as runs did before per-record canaries; ``own_canary``, the
    machine's time factor each record's own canary reading saw, writes it beside every record)."""
    rng = np.random.default_rng(seed)
    store = RunStore.create(root, {"environment": {"host": "synthetic", "git": {}}, "options": {},
                                   "profile": {"name": "synthetic"}, "release": release, "synthetic": True})
    if started is not None:
        store.update_meta(started=started)
    created = started or time.time()
    slowdown *= drift
    if canary:
        factor = drift if canary_drift is None else canary_drift
        rec = latency_record("canary", "single_stream", 1, CANARY_MS * factor, rng, count, dev, suite=CANARY_SUITE)
        rec.created = created - 1.0
        store.write(rec)
    for model in models:
        single = latency_record(model, "single_stream", 1, BASE_MS[model] * slowdown, rng, count, dev)
        records = [single] + [latency_record(model, "offline", b, BASE_MS[model] * slowdown * (0.6 + 0.4 * b),
                                             rng, count, dev) for b in batches]
        for i, rec in enumerate(records):
            rec.created = created + i * 1e-3
            if own_canary is not None:
                rec.extra[CANARY_FIELD] = {"value": CANARY_MS * own_canary, "unit": "ms", "method": "measured",
                                           "source": NOTE}
            store.write(rec)
        created += 1
    store.finish()
    return store.path
