"""Where should a model be cut between device, edge and cloud, and what does the cut save?

Bytes at each layer boundary (Scission's single-tensor split points) over views of real
photographs preprocessed as the model declares, against sending the view whole as a lossless PNG
(the published baseline) and, beside it, as a JPEG (what a camera sends); then the planner's best
plan for the configured links (Scission's published profiles when devices.toml has none), run for
real in separate processes over shaped loopback links, its measured latency against the prediction.
The record says which weights the model carries: only mobilenet_v2_imagenet is trained.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pytest_edgeai import (
    CALIBRATION,
    LOSSLESS,
    MISSED,
    TIERS,
    EdgeAIError,
    links_from_config,
    metric,
    netns,
    non_tensor_outputs,
    plan_over_budget,
    run_plan,
    study_file,
    study_plan,
    term_errors,
    unchecked,
)
from pytest_edgeai import split_plan as plan

WARMUP = 1  # untimed inferences before a plan's calibration, which in turn warms its measured runs
INPUTS = 6  # the centre view of each evaluation photograph (or seeded fields for non-image inputs)
_STUDIES: dict[str, object] = {}  # the last two models' cut studies: both tests of a model use one


def _study(bench, model):
    """The model's cut study, computed in the device's worker (onnxruntime runs there, not here)."""
    path = str(model.path)
    if path not in _STUDIES:
        if len(_STUDIES) >= 2:
            _STUDIES.pop(next(iter(_STUDIES)))
        _STUDIES[path] = bench.call(study_file, path, INPUTS, model.preprocess, model.params,
                                    exclusive=False, about=model)  # bytes, not timing
    return _STUDIES[path]


def _onnx_only(model) -> None:
    if model.format != "onnx":
        pytest.skip(f"the split study cuts ONNX graphs; {model.name} is {model.format}")
    if why := non_tensor_outputs(model):
        pytest.skip(f"split does not apply to {model.name}: {why}; the study cuts between tensors")


def _precision(device) -> dict[str, str]:
    """The device tier's precision: an EdgeTPU (or an int8-converting device) sends int8 activations."""
    int8 = device.kind == "edgetpu" or device.options.get("quantization") == "int8"
    return {device.tier: "int8"} if int8 else {}


def _extra(claims, name: str, model: str, key: str, default):
    spec = claims.spec(name, model)
    return spec.extras.get(key, default) if spec else default


def test_bytes_per_cut(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims):
    """Bytes at every layer boundary (raw, fp16, int8; zlib, zstd, lz4) against the PNG and the JPEG of the input."""
    model = edgeai_workload
    _onnx_only(model)
    record = edgeai_bench.new_record(model, {
        "name": "split_bytes_per_cut", "inputs": INPUTS, "activations": "onnxruntime CPU on this host"})
    try:
        study = _study(edgeai_bench, model)
        record.scenario["input_set"] = study.input_set
        encoding = _extra(edgeai_claims, "min_best_cut_saving", model.name, "encoding", LOSSLESS)
        before = int(_extra(edgeai_claims, "min_best_cut_saving", model.name, "before_last_layers", 0))
        depth_encoding = _extra(edgeai_claims, "max_saving_depth_layers", model.name, "encoding", LOSSLESS)
        at_encoding = _extra(edgeai_claims, "min_cut_saving", model.name, "encoding", LOSSLESS)
        at_scope = _extra(edgeai_claims, "min_cut_saving", model.name, "at", None)
        best = study.best(encoding, before)
        depth = study.saving_depth(depth_encoding)
        at = study.at(str(at_scope), at_encoding) if at_scope else None
    except EdgeAIError as exc:
        edgeai_bench.fail_record(record, str(exc))
        raise
    fmt = study.wire.input_format
    k_best = study.cuts.index(best[0]) if best else None
    jpeg = study.savings(encoding, "jpeg")
    record.metrics.update({
        "input_raw_bytes": metric(study.wire.input_raw_bytes, "bytes", "uint8 pixels (tensor bytes if not an image)"),
        "input_compressed_bytes": metric(study.wire.input_compressed_bytes, "bytes", f"{fmt}, mean over inputs"),
        "input_jpeg_bytes": metric(study.jpeg_bytes, "bytes",
                                   "JPEG quality 90 of the same views, mean (camera baseline)"),
        "best_cut_saving": metric(best[1] if best else None, "x",
                                   f"{fmt} input bytes / bytes at the best feature-layer cut ({encoding}, cuts >= "
                                   f"{before} layers before the output): {best[0].name if best else 'none'}",
                                   "derived"),
        "best_cut_saving_vs_jpeg": metric(jpeg[k_best] if k_best is not None and study.jpeg_bytes else None, "x",
                                           f"JPEG input bytes / bytes at the same cut ({encoding})", "derived"),
        "saving_depth_layers": metric(depth, "layers", f"network layers after the earliest cut that saves "
                                                       f"({depth_encoding}); 0: none saves", "derived"),
        "layer_boundaries": metric(len(study.cuts), "cuts", "single-tensor cuts, one per layer boundary, counted in "
                                                            "the model graph", "derived"),
    })
    if at_scope:
        k_at = study.cuts.index(at[0]) if at else None
        record.metrics["cut_saving"] = metric(at[1] if at else None, "x", f"{fmt} input bytes / bytes at the end of "
                                              f"{at_scope} ({at_encoding}): {at[0].name if at else 'no such cut'}",
                                              "derived")
        record.metrics["cut_saving_vs_jpeg"] = metric(
            study.savings(at_encoding, "jpeg")[k_at] if k_at is not None and study.jpeg_bytes else None, "x",
            f"JPEG input bytes / bytes at the end of {at_scope} ({at_encoding})", "derived")
    record.extra.update({"cuts": study.table(), "unavailable_codecs": study.wire.unavailable,
                         "best_cut": best[0].name if best else None, "layers": study.layers})
    edgeai_bench.save(record)
    edgeai_claims.check("min_best_cut_saving", best[1] if best else None, model.name, record)
    at_spec = edgeai_claims.spec("min_cut_saving", model.name)
    if at_scope and at is None and at_spec is not None:  # a block the model does not have: said, never a skip
        edgeai_claims.add(unchecked(at_spec, edgeai_device.name, model.name,
                                    f"min_cut_saving for {model.name}: {study.no_block(str(at_scope))}",
                                    verdict=MISSED), record)
    else:
        edgeai_claims.check("min_cut_saving", at[1] if at else None, model.name, record)
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
        study = _study(edgeai_bench, model)
        encoding = _extra(edgeai_claims, "max_prediction_error", model.name, "encoding", "raw+none")
        planned = edgeai_bench.call(study_plan, study, links, tiers, repeats=profile.min_count,  # per-block timing
                                    encoding=encoding, precision=_precision(edgeai_device),
                                    trained=model.weights.get("kind") == "trained")
    except EdgeAIError as exc:
        edgeai_bench.fail_record(record, str(exc))
        raise
    best = planned.chosen
    record.scenario["constraints"] = [c.describe() for c in planned.constraints]
    record.metrics["predicted_latency_ms"] = metric(best.latency_s * 1e3, "ms", best.describe(), "predicted")
    record.scenario["tier_precision"] = planned.precision or "fp32 on every tier"
    record.metrics["plan_top1_agreement"] = metric(planned.agreement[0]["top1_agreement"], "fraction",
                                                   f"the chosen plan's wire encodings "
                                                   f"({planned.agreement[0]['method']})")
    record.extra.update({
        "plans": [{**p.to_dict(), "accuracy": a} for p, a in zip(planned.plans, planned.agreement)],
        "boundaries": planned.boundaries,
        "block_latency_s": list(planned.problem.latency_s[tiers[0]]),
        "block_names": list(planned.problem.names), "boundary_bytes": list(planned.problem.boundary_bytes)})
    refused = netns.unavailable()
    network = "user" if refused else "kernel"  # kernel-shaped where this process may
    # what defines the measurement (its comparison key); why namespaces were refused names a pid and a
    # random probe, so it is said beside it, never in the key (the record would pair with no other run)
    record.scenario["network"] = network
    if refused:
        record.warnings.append(f"links shaped in user space: kernel-shaped links are unavailable here ({refused})")
    record.scenario["wire_encoding"] = planned.encoding
    edgeai_bench.save(record)  # the plan is on disk before anything is executed
    too_long = plan_over_budget(profile, best.latency_s, WARMUP + CALIBRATION + profile.min_count)
    if too_long:
        record.warnings.append(f"not executed: {too_long}")
        edgeai_bench.save(record)
        edgeai_claims.not_checkable("max_prediction_error", model.name, too_long, record)
        pytest.skip(f"{model.name}: {too_long}")
    try:
        with edgeai_bench.exclusive():
            measured = run_plan(study, planned, runs=profile.min_count, warmup=WARMUP,
                                timeout_s=profile.timeout_s, network=network)
    except EdgeAIError as exc:
        record.samples["latency_ns"] = [s * 1e9 for s in getattr(exc, "partial", [])]
        edgeai_bench.fail_record(record, str(exc))
        raise
    record.samples["latency_ns"] = [s * 1e9 for s in measured.latencies_s]
    calibration = measured.extra["calibration"]
    record.metrics.update({
        "calibrated_predicted_latency_ms": metric(
            measured.predicted_s * 1e3, "ms", f"the plan re-priced with its per-message costs measured on its own "
            f"stages and links ({calibration['queries']} calibration inferences before the measured ones)",
            "predicted"),
        "uncalibrated_prediction_error": metric(
            abs(measured.median_s - best.latency_s) / measured.median_s, "fraction",
            "|measured - predicted| / measured, the prediction without the measured per-message costs", "derived"),
        "measured_latency_ms": metric(measured.median_s * 1e3, "ms",
                                       f"median of {len(measured.latencies_s)} split runs over shaped links"),
        "prediction_error": metric(measured.prediction_error, "fraction",
                                   f"|measured - calibrated prediction| / measured; link: {measured.link_method()}",
                                   "derived"),
        "max_abs_output_error": metric(measured.max_abs_error, "abs",
                                        "split outputs against the whole model's"),
        "top1_agreement": metric(measured.top1_agreement, "fraction",
                                 f"split outputs' argmax against the whole model's ({planned.encoding} on the wire)"),
    })
    record.extra["link_shaping"] = measured.shaping
    record.extra["calibration"] = calibration
    record.extra["terms_s"] = {k: measured.extra[k] for k in ("predicted_terms", "uncalibrated_predicted_terms",
                                                              "measured_terms")}
    by_term = term_errors(measured)
    record.extra["prediction_error_by_term_s"] = {
        **by_term, "method": "measured - predicted seconds per term, from the medians of each term (their sum is "
                             "not exactly the medians' difference)"}
    worst = max(by_term, key=lambda k: abs(by_term[k]))
    if worst == "compute_s" and abs(by_term[worst]) > 0.05 * measured.median_s:
        record.warnings.append(
            f"prediction_error: mostly the compute term: the stages computed {by_term[worst] * 1e3:+.1f} ms against "
            "the per-block profile taken before execution (this host's speed changed between the two phases, e.g. "
            "other load on it, which the predictor cannot know); links "
            f"{by_term['link_s'] * 1e3:+.1f} ms, message CPU {by_term['message_s'] * 1e3:+.1f} ms")
    if not measured.independent:
        record.warnings.append(f"prediction_error: {measured.link_method()}")
    edgeai_bench.save(record)
    # the throughput objective's plan over the same profile, run as a pipeline (each tier on a different query)
    piped_plan = replace(planned, plans=plan(planned.problem, "throughput", planned.constraints))
    record.extra["throughput_plan"] = piped_plan.chosen.to_dict()
    try:
        with edgeai_bench.exclusive():
            piped = run_plan(study, piped_plan, runs=max(2, profile.min_count), warmup=WARMUP,
                             timeout_s=profile.timeout_s, network=network)
    except EdgeAIError as exc:
        edgeai_bench.fail_record(record, f"pipelined throughput plan: {exc}")
        raise
    record.metrics.update({
        "predicted_throughput_per_s": metric(piped.predicted_throughput_per_s, "1/s",
                                             f"{piped_plan.chosen.describe()}, re-priced with its per-message costs "
                                             "measured on its own stages and links", "predicted"),
        "uncalibrated_predicted_throughput_per_s": metric(piped_plan.chosen.throughput_per_s, "1/s",
                                                          piped_plan.chosen.describe(), "predicted"),
        "measured_throughput_per_s": metric(piped.throughput_per_s, "1/s",
                                            f"pipelined, {piped.extra['window']} in flight: (completions - 1) / "
                                            "(last - first completion)"),
        "throughput_error": metric(piped.throughput_error, "fraction",
                                   f"|measured - predicted| / measured; link: {piped.link_method()}", "derived"),
    })
    edgeai_bench.save(record)
    record.extra["throughput_calibration"] = piped.extra["calibration"]
    edgeai_claims.check("max_prediction_error", measured.prediction_error_estimate(), model.name, record)
    edgeai_claims.assert_met()
