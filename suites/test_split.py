"""Where should a model be cut between device, edge and cloud, and what does the cut save?

Bytes at each single-tensor cut (Scission's split points) over a seeded set of image-like
inputs, against sending the input whole as PNG; then the planner's best plan for the
configured links (Scission's published profiles when devices.toml has none), run for real in
separate processes over shaped loopback links, its measured latency against the prediction.
Zoo weights are random (seeded), so activations are not a trained network's: sparsity and
compressibility, hence savings, can differ from published figures for trained models.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_edgeai.claims import MISSED, unchecked
from pytest_edgeai.devices import TIERS
from pytest_edgeai.errors import EdgeAIError
from pytest_edgeai.measure.rounds import Estimate
from pytest_edgeai.measure.stats import median_ci
from pytest_edgeai.results.record import metric
from pytest_edgeai.split.network import links_from_config
from pytest_edgeai.split.study import LOSSLESS, run_plan, study_file, study_plan

INPUTS = 3  # deterministic inputs per model for the bytes study
_STUDIES: dict[str, object] = {}  # the last two models' cut studies: both tests of a model use one


def _study(bench, path: str):
    """The model's cut study, computed in the device's worker (onnxruntime runs there, not here)."""
    if path not in _STUDIES:
        if len(_STUDIES) >= 2:
            _STUDIES.pop(next(iter(_STUDIES)))
        _STUDIES[path] = bench.call(study_file, path, INPUTS, exclusive=False)  # bytes, not timing
    return _STUDIES[path]


def _onnx_only(model) -> None:
    if model.format != "onnx":
        pytest.skip(f"the split study cuts ONNX graphs; {model.name} is {model.format}")


def _extra(claims, name: str, model: str, key: str, default):
    spec = claims.spec(name, model)
    return spec.extras.get(key, default) if spec else default


def _error_estimate(measured, predicted_s: float) -> Estimate:
    """|measured - predicted| / measured over the median's distribution-free interval (the error is
    monotone on each side of the prediction, so its range is at the interval's ends, or 0 inside)."""
    lo, hi = median_ci(np.asarray(measured.latencies_s))
    ends = [abs(x - predicted_s) / x for x in (lo, hi) if x > 0]
    low = 0.0 if lo <= predicted_s <= hi else min(ends)
    return Estimate(measured.prediction_error, low, max(ends),
                    f"95% interval of the median of {len(measured.latencies_s)} split runs, carried through "
                    f"|measured - predicted| / measured")


def test_bytes_per_cut(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims):
    """Bytes at every cut (raw, fp16, int8; zlib, zstd, lz4) against the PNG of the input."""
    model = edgeai_workload
    _onnx_only(model)
    record = edgeai_bench.new_record(model, {
        "name": "split_bytes_per_cut", "inputs": INPUTS,
        "input_set": "seeded synthetic scenes (gradients, shaded shapes, sigma-2 noise), not white noise",
        "activations": "onnxruntime CPU on this host"})
    try:
        study = _study(edgeai_bench, str(model.path))
        encoding = _extra(edgeai_claims, "min_best_cut_saving", model.name, "encoding", LOSSLESS)
        before = int(_extra(edgeai_claims, "min_best_cut_saving", model.name, "before_last_layers", 0))
        depth_encoding = _extra(edgeai_claims, "max_saving_depth_layers", model.name, "encoding", LOSSLESS)
        best = study.best(encoding, before)
        depth = study.saving_depth(depth_encoding)
    except EdgeAIError as exc:
        edgeai_bench.fail_record(record, str(exc))
        raise
    fmt = study.wire.input_format
    record.metrics.update({
        "input_raw_bytes": metric(study.wire.input_raw_bytes, "bytes", "uint8 pixels (tensor bytes if not an image)"),
        "input_compressed_bytes": metric(study.wire.input_compressed_bytes, "bytes", f"{fmt}, mean over inputs"),
        "best_cut_saving": metric(best[1] if best else None, "x",
                                   f"{fmt} input bytes / bytes at the best cut ({encoding}, cuts >= {before} "
                                   f"layers before the output): {best[0].name if best else 'none'}", "derived"),
        "saving_depth_layers": metric(depth, "layers",
                                       f"layers after the earliest cut that saves ({depth_encoding}); 0: none saves",
                                       "derived"),
        "single_tensor_cuts": metric(len(study.cuts), "cuts", "cuts where one tensor crosses"),
    })
    record.extra.update({"cuts": study.table(), "unavailable_codecs": study.wire.unavailable,
                         "best_cut": best[0].name if best else None, "layers": study.graph.size})
    edgeai_bench.save(record)
    edgeai_claims.check("min_best_cut_saving", best[1] if best else None, model.name, record)
    depth_spec = edgeai_claims.spec("max_saving_depth_layers", model.name)
    if depth == 0 and depth_spec is not None:  # no cut saves: the claim asks how deep a saving cut is, and none is
        edgeai_claims.add(unchecked(depth_spec, edgeai_device.name, model.name,
                                    f"max_saving_depth_layers for {model.name}: no cut sends fewer bytes than the "
                                    f"compressed input ({depth_encoding})", verdict=MISSED), record)
    else:
        edgeai_claims.check("max_saving_depth_layers", depth, model.name, record)
    edgeai_claims.assert_met()


def test_planned_split_against_execution(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims,
                                         edgeai_config):
    """The planner's best plan, predicted, then run over shaped links in separate processes."""
    model = edgeai_workload
    _onnx_only(model)
    if edgeai_device.backend != "onnxruntime":
        pytest.skip(f"split execution runs its segments with onnxruntime on this host; "
                    f"{edgeai_device.name} uses {edgeai_device.backend}")
    links = links_from_config(edgeai_config)
    tiers = [t for t in TIERS if any(t in pair for pair in links)]
    profile = edgeai_bench.profile
    record = edgeai_bench.new_record(model, {
        "name": "split_plan", "objective": "latency", "tiers": tiers, "runs": profile.min_count,
        "links": {f"{s}->{d}": {"bandwidth_mbps": lk.bandwidth_mbps, "rtt_ms": lk.rtt_ms, "loss": lk.loss,
                                "name": lk.name} for (s, d), lk in links.items()},
        "tier_compute": "this host's per-block latency for every tier (one machine plays every tier)"})
    try:
        study = _study(edgeai_bench, str(model.path))
        planned = edgeai_bench.call(study_plan, study, links, tiers, repeats=profile.min_count)  # per-block timing
    except EdgeAIError as exc:
        edgeai_bench.fail_record(record, str(exc))
        raise
    best = planned.chosen
    record.scenario["constraints"] = [c.describe() for c in planned.constraints]
    record.metrics["predicted_latency_ms"] = metric(best.latency_s * 1e3, "ms", best.describe(), "predicted")
    record.extra.update({
        "plans": [p.to_dict() for p in planned.plans], "boundaries": planned.boundaries,
        "block_latency_s": list(planned.problem.latency_s[tiers[0]]),
        "block_names": list(planned.problem.names), "boundary_bytes": list(planned.problem.boundary_bytes)})
    edgeai_bench.save(record)  # the plan is on disk before anything is executed
    try:
        with edgeai_bench.exclusive():
            measured = run_plan(study, planned, runs=profile.min_count, warmup=profile.warmup_count,
                                timeout_s=profile.timeout_s)
    except EdgeAIError as exc:
        record.samples["latency_ns"] = [s * 1e9 for s in getattr(exc, "partial", [])]
        edgeai_bench.fail_record(record, str(exc))
        raise
    record.samples["latency_ns"] = [s * 1e9 for s in measured.latencies_s]
    record.metrics.update({
        "measured_latency_ms": metric(measured.median_s * 1e3, "ms",
                                       f"median of {len(measured.latencies_s)} split runs over shaped links"),
        "prediction_error": metric(measured.prediction_error, "fraction", "|measured - predicted| / measured"),
        "max_abs_output_error": metric(measured.max_abs_error, "abs",
                                        "split outputs against the whole model's"),
    })
    edgeai_bench.save(record)
    edgeai_claims.check("max_prediction_error", _error_estimate(measured, best.latency_s), model.name, record)
    edgeai_claims.assert_met()
