"""How fast is each model on each device, and what does batching buy?

Every test measures first, records, then checks the claims devices.toml states for the device.
"""

from pytest_edgeai import metric


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
