"""How fast is each model on each device, and what does batching buy?

Every test measures first, records, then checks the claims devices.toml states for the device.
"""

from dataclasses import asdict

import numpy as np
import pytest

from pytest_edgeai import CROPS, NmsConfig, evaluation_photos, metric, summaries, time_pipeline


def test_single_stream(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims):
    """Latency of one sample at a time (MLPerf SingleStream): p90 is the figure of merit."""
    record = edgeai_bench.single_stream(edgeai_workload)
    edgeai_claims.check("max_p90_latency_ms", record.metric("latency_p90_ms"), edgeai_workload.name, record)
    if edgeai_device.kind == "edgetpu":  # how much of the model the compiler put on the TPU (a fixed figure)
        report = record.backend.get("settings", {}).get("edgetpu_compiler", {})
        edgeai_claims.check("min_edgetpu_op_fraction", report.get("ops_on_tpu_fraction"), edgeai_workload.name, record)
    edgeai_claims.assert_met()


def test_batch_sweep(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims, edgeai_session):
    """Offline throughput at each batch of the sweep, and the speed-up of the best batch over 1."""
    batches = edgeai_session.settings.batches
    records = {b: edgeai_bench.offline(edgeai_workload, batch=b) for b in batches}
    if 1 in records:
        edgeai_claims.check("min_inferences_per_s", records[1].metric("throughput_ips"),
                            edgeai_workload.name, records[1])
    if 1 in records and len(records) > 1:
        base = records[1].metric("throughput_ips")
        best_batch = max((b for b in records if b != 1), key=lambda b: records[b].metric("throughput_ips"))
        speedup = records[best_batch].metric("throughput_ips") / base
        derived = edgeai_bench.derived(
            edgeai_workload, "batching_speedup", inputs=list(records.values()), batches=batches,
            metrics={"batching_speedup": metric(
                speedup, "x", f"best offline throughput over batches > 1 (batch {best_batch}) / batch 1, "
                              f"same test", method="derived"),
                "best_batch": metric(best_batch, "batch", "batch with the highest offline throughput",
                                     method="derived")})
        edgeai_claims.check("min_batching_speedup", speedup, edgeai_workload.name, derived)
    edgeai_claims.assert_met()


def test_detection_pipeline(edgeai_device, edgeai_workload, edgeai_bench, edgeai_session):
    """A detector as published figures time it: the model, then box decoding + NMS (TFLite_Detection_PostProcess's
    behaviour) on the host, timed apart and together on the same queries over real photographs."""
    model = edgeai_workload
    if model.task != "detection" or model.preprocess is None:
        pytest.skip(f"{model.name} is not a zoo detector: it has no SSD post-processing stage")
    views = evaluation_photos(model.preprocess).tensors()[::len(CROPS)]
    queries = edgeai_session.profile.min_count
    timing = edgeai_bench.call(time_pipeline, model, edgeai_device, views, queries,
                               edgeai_session.profile.warmup_count)
    stats = summaries(timing)
    record = edgeai_bench.new_record(model, {"name": "detection_pipeline", "queries": queries, "batch": 1,
                                             "postprocess": {**asdict(NmsConfig()), "where": "numpy on the host"},
                                             "input_set": evaluation_photos(model.preprocess).describe()})
    record.samples.update({"latency_ns": timing.total_ns, "model_ns": timing.model_ns,
                           "postprocess_ns": timing.postprocess_ns})
    for key, label in (("model_ns", "model"), ("postprocess_ns", "postprocess"), ("total_ns", "pipeline")):
        record.metrics[f"{label}_latency_median_ms"] = metric(
            stats[key]["median_ms"], "ms", f"median of {queries} batch-1 queries: {label}, timed in one loop")
        record.metrics[f"{label}_latency_p90_ms"] = metric(stats[key]["p90_ms"], "ms", f"p90 of the same: {label}")
    record.metrics["detections_per_image"] = metric(float(np.mean(timing.detections)), "detections",
                                                    "mean kept after NMS (seeded weights: the boxes mean nothing)")
    edgeai_bench.save(record)
