"""How fast is each model on each device, and what does batching buy?

Every test measures first, records, then checks the claims devices.toml states for the device.
The batch sweep measures every batch in interleaved rounds (1 2 4 8, 8 4 2 1, ...), so the
batching speed-up is a ratio of windows that saw the same machine, with an interval from the
per-round ratios; a claim left inconclusive measures more rounds, up to the profile's budget.
"""

from dataclasses import asdict

import numpy as np
import pytest

from pytest_edgeai import (
    CROPS,
    Estimate,
    Interleaved,
    NmsConfig,
    batch_problem,
    best_of,
    estimate_metric,
    evaluation_photos,
    input_specs,
    metric,
    over_budget,
    round_profile,
    rounds_estimate,
    rounds_ratio,
    seeded_twin,
    summaries,
    time_pipeline,
    windows_p90,
)


def _p90(records) -> Estimate:
    """p90 over every window's queries, judged by measure.rounds.windows_p90 (bench_claim_power judges with it too)."""
    return windows_p90([r.samples["latency_ns"] for r in records])


def _timed_as_twin(session, model) -> None:
    """Below the full profile, a zoo model that runs another's graph with other weights is not timed again."""
    if session.profile.name != "full" and (twin := seeded_twin(model.name)):
        pytest.skip(f"{model.name} runs {twin}'s graph with trained weights: it takes {twin}'s time, "
                    f"measured as {twin} beside it; timed on its own at --edgeai-profile full")


def test_single_stream(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims, edgeai_session):
    """Latency of one sample at a time (MLPerf SingleStream): p90 is the figure of merit."""
    _timed_as_twin(edgeai_session, edgeai_workload)
    windows = [edgeai_bench.single_stream(edgeai_workload)]

    def more() -> Estimate:
        windows.append(edgeai_bench.single_stream(edgeai_workload, window=len(windows)))
        return _p90(windows)

    edgeai_claims.check("max_p90_latency_ms", _p90(windows), edgeai_workload.name, windows[0], more=more)
    if edgeai_device.kind == "edgetpu":  # how much of the model the compiler put on the TPU (a fixed figure)
        report = windows[0].backend.get("settings", {}).get("edgetpu_compiler", {})
        edgeai_claims.check("min_edgetpu_op_fraction", report.get("ops_on_tpu_fraction"), edgeai_workload.name,
                            windows[0])
    else:
        edgeai_claims.not_checkable("min_edgetpu_op_fraction", edgeai_workload.name,
                                    f"{edgeai_device.name} is a {edgeai_device.kind}, not an EdgeTPU: "
                                    f"edgetpu_compiler does not compile for it", windows[0])
    edgeai_claims.assert_met()


def _over_budget(session, device, model, batches) -> dict[int, str]:
    """The batches the profile leaves to a longer one (``over_budget``), from the batch-1 latency this run
    already measured for the model on the device; with no such figure every batch is swept."""
    seen = [r for r in session.records if r.status == "ok" and r.model.get("name") == model.name
            and r.device.get("name") == device.name and r.scenario.get("batch") == 1
            and r.scenario.get("name") in ("single_stream", "offline") and r.metric("latency_mean_ms")]
    if not seen:
        return {}
    return over_budget(session.profile, seen[-1].metric("latency_mean_ms") / 1e3, batches, f"record {seen[-1].id}")


def test_batch_sweep(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims, edgeai_session):
    """Offline throughput at each batch in interleaved rounds, and the best batch's speed-up over 1. A batch
    the model cannot be fed (a static batch dimension) is skipped with the reason, not failed; so is one whose
    query would outlast the profile's max_query_s (left to a longer profile, said in the record)."""
    model = edgeai_workload
    _timed_as_twin(edgeai_session, model)
    wanted = list(edgeai_session.settings.batches)
    specs = edgeai_bench.call(input_specs, model, edgeai_device, exclusive=False, about=model) if wanted != [1] else []
    unfed = {b: why for b in wanted if (why := batch_problem(specs, b, model.params.get("input_shapes")))}
    later = _over_budget(edgeai_session, edgeai_device, model, [b for b in wanted if b not in unfed])
    cannot = {**unfed, **later}
    batches = [b for b in wanted if b not in cannot]
    if not batches:
        pytest.skip(f"{model.name} takes none of the batches {wanted}: {'; '.join(cannot.values())}")
    skipped = "; ".join(f"batch{'es' if len(d) > 1 else ''} {', '.join(map(str, d))} skipped: {next(iter(d.values()))}"
                        for d in (unfed, later) if d)
    profile = round_profile(edgeai_session.profile)
    series = Interleaved([lambda r, b=b: edgeai_bench.offline(model, batch=b, profile=profile, round=r)
                          for b in batches])
    series.more(edgeai_session.profile.rounds)
    rounds = dict(zip(batches, series.results))
    pooled = {b: edgeai_bench.derived(model, "offline_rounds", {}, inputs=[], batch=b) for b in batches}
    for rec in pooled.values():
        if cannot:
            rec.warnings.append(skipped)
            rec.extra["batches_skipped"] = {str(b): why for b, why in cannot.items()}

    def update() -> None:
        """The figures over every round so far, rewritten on the pooled records as rounds are added."""
        for b, rec in pooled.items():
            est = rounds_estimate(rounds[b], "throughput_ips", f"batch-{b} throughputs")
            rec.metrics["throughput_ips"] = estimate_metric(
                est, "inferences/s",
                f"geometric mean of {est.rounds} interleaved rounds' offline throughput at batch {b}",
                windows=[r.metric("throughput_ips") for r in rounds[b]])
            rec.extra["derived_from"] = [r.id for r in rounds[b]]
            edgeai_bench.save(rec)

    def throughput() -> Estimate:
        return rounds_estimate(rounds[1], "throughput_ips", "batch-1 throughputs")

    def speedup() -> tuple[int, Estimate]:
        candidates = {b: (lambda level, b=b: rounds_ratio(rounds[b], rounds[1], "throughput_ips",
                                                          f"batch {b} / batch 1", level))
                      for b in batches if b != 1}
        best, est = best_of(candidates, "batching speed-up")
        return int(best), est

    def more_throughput() -> Estimate:
        series.more(1)
        update()
        return throughput()

    update()
    if 1 in rounds:
        edgeai_claims.check("min_inferences_per_s", throughput(), model.name, pooled[1], more=more_throughput)
    if 1 in rounds and len(rounds) > 1:
        best, est = speedup()
        derived = edgeai_bench.derived(model, "batching_speedup", {}, inputs=[], batches=batches)

        def fill(best: int, est: Estimate) -> Estimate:
            derived.metrics["batching_speedup"] = estimate_metric(
                est, "x", f"the best batch's offline throughput / batch 1's, per interleaved round (batch {best})")
            derived.metrics["best_batch"] = estimate_metric(Estimate.exact(best), "batch",
                                                            "batch with the highest speed-up (point estimate)")
            for b in batches:
                if b != 1:
                    derived.metrics[f"speedup_b{b}"] = estimate_metric(
                        rounds_ratio(rounds[b], rounds[1], "throughput_ips", f"batch {b} / batch 1"), "x",
                        f"offline throughput at batch {b} / batch 1, per interleaved round")
            derived.extra["derived_from"] = [r.id for rs in rounds.values() for r in rs]
            edgeai_bench.save(derived)
            return est

        def more_speedup() -> Estimate:
            series.more(1)
            update()
            return fill(*speedup())

        edgeai_claims.check("min_batching_speedup", fill(best, est), model.name, derived, more=more_speedup)
    elif len(batches) == 1 and 1 in rounds:
        why = f"can be measured ({skipped})" if cannot else "was asked for (--edgeai-batches)"
        edgeai_claims.not_checkable("min_batching_speedup", model.name, f"only batch {batches[0]} {why}",
                                    pooled[batches[0]])
    if 1 not in rounds:  # both claims are against batch 1
        why = f"cannot be measured: {cannot[1]}" if 1 in cannot else "was not asked for (--edgeai-batches)"
        why = f"batch 1 {why}; both figures are batch 1's or relative to it"
        for name in ("min_inferences_per_s", "min_batching_speedup"):
            edgeai_claims.not_checkable(name, model.name, why, pooled[batches[0]])
    edgeai_claims.assert_met()
    if cannot and len(batches) == 1:  # no sweep to speak of: said as a skip, with batch 1's figures in the record
        pytest.skip(f"{model.name}: {skipped}; batch {batches[0]} measured")


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
