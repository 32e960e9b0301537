"""What do smaller models buy? Quantised variants (size, speed, fidelity against fp32) and an
edge/cloud cascade on real data (latency, bytes on the wire and accuracy against the threshold).

Every test measures and records first, then checks the claims devices.toml states.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import numpy as np
import pytest

from pytest_edgeai import COMPRESSION_METHODS as METHODS
from pytest_edgeai import (
    Bench,
    Estimate,
    Interleaved,
    Link,
    Record,
    calibration_set,
    cascade,
    digits,
    estimate_metric,
    fidelity_inputs,
    input_specs,
    model_scores,
    non_tensor_outputs,
    round_profile,
    rounds_ratio,
)
from pytest_edgeai import compression_study as study
from pytest_edgeai import variants_cache_dir as default_cache_dir

FIDELITY_SAMPLES = 32      # non-image models: seeded random inputs; image models use every evaluation view
CALIBRATION_SAMPLES = 18   # image models: views of the calibration photographs, never evaluated on
TRAINING_CLAIMS = ("min_top1_agreement", "min_top5_agreement", "max_top1_prob_change")
# quantising (and calibrating) inception_v4 / ssd_mobilenet_v2 takes minutes on a small CPU: only the
# full profile does it, so the default run of every suite stays within minutes on 2 cores
LARGE_MODEL_BYTES = 64 << 20
DEFAULT_THRESHOLD = 0.9
DEFAULT_LINK = "device_cloud"
# Scission's published device-cloud profile, used only when devices.toml configures no link
FALLBACK_LINK = Link("scission_device_cloud", "device", "cloud", bandwidth_mbps=1.6, rtt_ms=100.0)


def _cache_dir(edgeai_session):
    base = edgeai_session.settings.cache_dir
    return base / "variants" if base else default_cache_dir()


def _speedup_rounds(bench, session, fp32, variant):
    """The variant's offline batch-1 throughput over fp32's in interleaved rounds (fp32 int8, int8 fp32, ...),
    written on the variant's record; returns the estimate and how to measure one more round."""
    profile = round_profile(session.profile)
    series = Interleaved([lambda r, m=m: bench.offline(m, 1, profile=profile, round=r) for m in (fp32, variant.model)])

    def estimate():
        est = rounds_ratio(series.results[1], series.results[0], "throughput_ips", f"{variant.method} / fp32")
        variant.record.metrics["speedup_interleaved"] = estimate_metric(
            est, "x", f"offline batch-1 throughput of {variant.method} / fp32, per interleaved round")
        variant.record.extra["speedup_rounds"] = [r.id for rs in series.results for r in rs]
        bench.save(variant.record)
        return est

    def more():
        series.more(1)
        return estimate()

    series.more(session.profile.rounds)
    return estimate(), more


def _check_variants(edgeai_claims, result, model_name, weights=None, bench=None, session=None, fp32=None):
    """Size and fidelity for every variant (or the one a claim names); int8 speed-up for one.

    Fidelity claims need a trained model whose fp32 answers differ between inputs: on seeded weights
    or a degenerate reference they are not checkable, and say why."""
    for name, metric in (("min_size_reduction", "size_reduction"), ("min_top1_agreement", "top1_agreement"),
                         ("min_top5_agreement", "top5_agreement"), ("max_top1_prob_change", "top1_prob_change")):
        spec = edgeai_claims.spec(name, model_name)
        named = spec.extras.get("method") if spec is not None else None
        if spec is not None and (unbuilt := _not_built(result, named)):
            edgeai_claims.not_checkable(name, model_name, unbuilt, result.fp32)
            continue
        for variant in result.variants:
            if not variant.ok or (named is not None and named != variant.method):
                continue
            why = None
            if name in TRAINING_CLAIMS:
                why = (f"{model_name} carries seeded weights (no trained weights exist for it here)"
                       if weights and weights.get("kind") == "seeded" else variant.fidelity.degenerate)
            if why:
                edgeai_claims.not_checkable(name, model_name, f"{variant.method}: {why}", variant.record)
                continue
            observed = variant.record.metric(metric)
            if observed is None:  # a skip with the reason, never silently no verdict
                edgeai_claims.not_checkable(name, model_name, f"{variant.method}: the study gives no {metric} for "
                                            f"these outputs (boxes, or a single score, have no top-1; top-5 and "
                                            f"probabilities need one class vector per input)", variant.record)
            else:
                edgeai_claims.check(name, observed, model_name, variant.record)
    spec = edgeai_claims.spec("min_int8_speedup", model_name)
    if spec is not None:
        method = spec.extras.get("method", "int8_static")
        variant = result.by_method(method)
        if (unbuilt := _not_built(result, method)) or variant is None or variant.model is None or bench is None:
            edgeai_claims.not_checkable("min_int8_speedup", model_name,
                                        unbuilt or f"the {method} variant has no model to time", result.fp32)
        else:
            est, more = _speedup_rounds(bench, session, fp32, variant)
            edgeai_claims.check("min_int8_speedup", est, model_name, variant.record, more=more)


def _not_built(result, method):
    """Why a claim on ``method``'s variant (any variant when None) has none to judge; None when it has."""
    if method is None:
        if any(v.ok for v in result.variants):
            return None
        return "no variant was built: " + "; ".join(f"{v.method}: {v.skipped or v.error}" for v in result.variants)
    variant = result.by_method(method)
    if variant is not None and variant.ok:
        return None
    return f"the {method} variant was not built: " + (
        (variant.skipped or variant.error or "no record") if variant else "this study does not build it")


def test_quantised_variants(edgeai_device, edgeai_workload, edgeai_bench, edgeai_claims, edgeai_session):
    """fp16, int8 dynamic, int8 static QDQ (and NNCF where installed) against fp32: image models on views of
    real photographs (calibrated on other photographs), others on seeded inputs."""
    if edgeai_workload.format != "onnx":
        pytest.skip(f"{edgeai_workload.name} is {edgeai_workload.format}: the quantisers here take ONNX models")
    if why := non_tensor_outputs(edgeai_workload):
        pytest.skip(f"compression does not apply to {edgeai_workload.name}: {why}; fidelity compares output tensors")
    if edgeai_session.profile.name != "full" and edgeai_workload.path.stat().st_size > LARGE_MODEL_BYTES:
        pytest.skip(f"{edgeai_workload.name} is {edgeai_workload.path.stat().st_size >> 20} MiB: quantising it "
                    f"takes minutes; run with --edgeai-profile full")
    specs = edgeai_bench.call(input_specs, edgeai_workload, edgeai_device)
    inputs = fidelity_inputs(edgeai_workload, specs, FIDELITY_SAMPLES, CALIBRATION_SAMPLES,
                             edgeai_workload.params.get("input_shapes"))
    result = study(edgeai_bench, edgeai_workload, inputs.feeds, inputs.calibration, _cache_dir(edgeai_session),
                   input_set=inputs.described)
    _report_skips(edgeai_bench, result)
    _check_variants(edgeai_claims, result, edgeai_workload.name, edgeai_workload.weights, edgeai_bench,
                    edgeai_session, edgeai_workload)
    result.raise_errors()
    edgeai_claims.assert_met()


def test_quantised_digits(edgeai_device, edgeai_bench, edgeai_claims, edgeai_session):
    """The digits MLP quantised, fidelity and accuracy on the real held-out images."""
    built = digits.build("uniform", _cache_dir(edgeai_session))
    split = digits.load_split(digits.DigitsConfig())
    calib = calibration_set({"X": split.x_train[:64]}, 1)
    result = study(edgeai_bench, built.large, {"X": built.inputs}, calib, _cache_dir(edgeai_session),
                   methods=METHODS, labels=built.labels, classes=built.large_classes,
                   input_set={"evaluation": {"name": "scikit-learn digits, held-out split", "views": len(built.labels)},
                              "calibration": {"name": "scikit-learn digits, training split", "views": len(calib)}})
    _report_skips(edgeai_bench, result)
    _check_variants(edgeai_claims, result, built.large.name, None, edgeai_bench, edgeai_session, built.large)
    result.raise_errors()
    edgeai_claims.assert_met()


def _report_skips(bench, result):
    skipped = [v.skipped for v in result.variants if v.skipped]
    if skipped:
        result.fp32.warnings.extend(f"variant not built: {s}" for s in skipped)
        bench.save(result.fp32)


def _links(edgeai_session, device):
    links = [lk for lk in edgeai_session.config.links.values() if lk.src == device.tier]
    return links or ([FALLBACK_LINK] if device.tier == "device" else [])


def _tier_bench(edgeai_session, edgeai_bench, tier):
    """A bench on a selected, attached device of ``tier``; else the test's own (a stand-in)."""
    for device in edgeai_session.devices:
        if device.tier == tier and device.name != edgeai_bench.device.name \
                and edgeai_session.availability(device).attached:
            return Bench(device, edgeai_bench.suite, edgeai_bench.test_id, edgeai_bench.profile,
                         save=edgeai_session.save, availability=asdict(edgeai_session.availability(device)),
                         lab=edgeai_session, lock_timeout_s=edgeai_session.lock_timeout_s)
    return edgeai_bench


@pytest.mark.parametrize("workload", digits.WORKLOADS)
def test_cascade(workload, edgeai_device, edgeai_bench, edgeai_claims, edgeai_session):
    """Small model on the device, large one across the link: latency, bytes, accuracy vs threshold. Both
    models' compute is measured in interleaved rounds (small large, large small, ...), so the latency
    reduction gets an interval from the per-round reductions; more rounds while its claim is inconclusive."""
    built = digits.build(workload, _cache_dir(edgeai_session))
    links = _links(edgeai_session, edgeai_device)
    if not links:
        pytest.skip(f"no [links] from tier {edgeai_device.tier} in devices.toml: nothing to offload over")
    small_scores = edgeai_bench.call(model_scores, built.small, edgeai_device, built.inputs)
    raw, packed = cascade.input_bytes(built.inputs)
    claim_model = f"digits_{workload}"  # what devices.toml names the workload by
    headline = _headline_threshold(edgeai_claims, claim_model)
    profile = round_profile(edgeai_session.profile)
    remotes, by_device, cascades = [], {}, {}
    try:
        for link in links:
            remote = _tier_bench(edgeai_session, edgeai_bench, link.dst)
            if remote.device.name not in by_device:  # the large model is measured once per device, beside the small
                if remote is not edgeai_bench:
                    remotes.append(remote)
                series = Interleaved([lambda r, b=b, m=m: b.single_stream(m, profile=profile, round=r)
                                      for b, m in ((edgeai_bench, built.small), (remote, built.large))])
                series.more(edgeai_session.profile.rounds)
                by_device[remote.device.name] = (series, remote.call(model_scores, built.large, remote.device,
                                                                     built.inputs))
            series, large_scores = by_device[remote.device.name]
            small_s, large_s = _compute_s(series)
            data = cascade.CascadeData(
                small_probs=small_scores, small_classes=built.small_classes,
                large_probs=large_scores, large_classes=built.large_classes,
                labels=built.labels, bytes_raw=raw, bytes_compressed=packed,
                small_latency_s=statistics.fmean(small_s), large_latency_s=statistics.fmean(large_s))
            cascades[link.name] = _Cascade(edgeai_bench, data, link, series,
                                           _cascade_record(edgeai_bench, built, data, link, remote.device, series,
                                                           headline))
            cascades[link.name].reduction(headline)
        _check_cascade(edgeai_claims, claim_model, cascades, edgeai_device)
    finally:
        for remote in remotes:
            remote.close()
    edgeai_claims.assert_met()


def _compute_s(series) -> tuple[list[float], list[float]]:
    """Each round's mean single-sample latency of the small and of the large model, in seconds."""
    small, large = ([r.metric("latency_mean_ms") / 1e3 for r in rs] for rs in series.results)
    return small, large


@dataclass
class _Cascade:
    """One link's cascade: its data, the interleaved rounds of both models' compute, and its record."""

    bench: Bench
    data: cascade.CascadeData
    link: Link
    series: Interleaved
    record: Record

    def reduction(self, threshold: float) -> Estimate:
        """The latency reduction at ``threshold`` over every round so far, written as the record's headline."""
        est = cascade.reduction_rounds(self.data, self.link, threshold, *_compute_s(self.series))
        self.record.metrics["latency_reduction"] = estimate_metric(
            est, "x", f"large-for-all latency / cascade latency at confidence {threshold:g} over {self.link.name}, "
                      f"per interleaved round of both models' measured compute, the link from its model", "predicted")
        self.record.extra["derived_from"] = [r.id for rs in self.series.results for r in rs]
        self.bench.save(self.record)
        return est

    def more(self, threshold: float) -> Estimate:
        self.series.more(1)
        return self.reduction(threshold)


def _check_cascade(edgeai_claims, claim_model, cascades, device):
    """The latency reduction on the interleaved rounds' interval (re-measured while inconclusive); the accuracy
    loss exactly (a fixed input set)."""
    for name in ("min_cascade_latency_reduction", "max_cascade_accuracy_loss"):
        spec = edgeai_claims.spec(name, claim_model)
        if spec is None:
            continue
        link_name = spec.extras.get("link", DEFAULT_LINK if DEFAULT_LINK in cascades else next(iter(cascades)))
        if link_name not in cascades:
            pytest.fail(f"{name}: link {link_name!r} is not configured from tier {device.tier} "
                        f"(configured: {', '.join(cascades)})", pytrace=False)
        one, threshold = cascades[link_name], spec.extras.get("at_threshold", DEFAULT_THRESHOLD)
        if name.startswith("max_"):
            edgeai_claims.check(name, cascade.evaluate(one.data, one.link, threshold).accuracy_loss, claim_model,
                                one.record)
        else:
            edgeai_claims.check(name, one.reduction(threshold), claim_model, one.record,
                                more=lambda one=one, threshold=threshold: one.more(threshold))


def _headline_threshold(edgeai_claims, claim_model):
    """The threshold the claims name (when valid), so the record's headline is what was judged."""
    spec = edgeai_claims.spec("min_cascade_latency_reduction", claim_model)
    try:
        return cascade.validate_threshold(spec.extras.get("at_threshold", DEFAULT_THRESHOLD) if spec
                                          else DEFAULT_THRESHOLD)
    except cascade.CascadeError:
        return DEFAULT_THRESHOLD  # the claim check below raises the clear message after recording


def _cascade_record(bench, built, data, link, remote_device, series, threshold):
    points = cascade.sweep(data, link)
    head = cascade.evaluate(data, link, threshold)
    small_pred = built.small_classes[np.argmax(data.small_probs, axis=1)]
    stand_in = remote_device.name == bench.device.name
    where = (f"large model measured on {remote_device.name}"
             + (f", standing in for the {link.dst} tier (no attached {link.dst} device selected)" if stand_in else ""))
    compute = f"compute: the mean over {series.rounds} interleaved rounds' single-stream means"

    def m(value, unit, source, method="derived"):
        return {"value": value, "unit": unit, "method": method, "source": source}

    at = f"at confidence {head.threshold:g} over {link.name} (rtt {link.rtt_ms:g} ms, {link.bandwidth_mbps:g} Mbit/s)"
    record = bench.derived(built.small, "cascade", inputs=[r for rs in series.results for r in rs],
                           workload=built.workload, link=link.name, threshold=head.threshold, metrics={
        "cascade_latency_ms": m(head.latency_ms, "ms", f"expected: measured compute + link model {at}; {compute}; "
                                f"{where}", "predicted"),
        "baseline_latency_ms": m(head.baseline_latency_ms, "ms", f"every input zlib-compressed to the large model; "
                                 f"measured compute + link model; {compute}; {where}", "predicted"),
        "fraction_offloaded": m(head.fraction_offloaded, "fraction", f"inputs sent over the link {at}, computed "
                                f"offline from the small model's scores on the fixed set"),
        "bytes_per_input_compressed": m(head.bytes_per_input_compressed, "bytes",
                                        f"zlib level 6 bytes sent per input {at}"),
        "bytes_per_input_raw": m(head.bytes_per_input_raw, "bytes", f"raw float32 bytes sent per input {at}"),
        "input_bytes_compressed": m(float(np.mean(data.bytes_compressed)), "bytes", "mean zlib size of one input"),
        "accuracy_cascade": m(head.accuracy, "fraction", f"top-1 against ground truth {at}, computed offline from "
                              f"both models' scores on the fixed set"),
        "accuracy_large": m(head.accuracy_large_only, "fraction", "large model alone, ground truth", "measured"),
        "accuracy_small": m(float(np.mean(small_pred == data.labels)), "fraction",
                            "small model alone ('other' counts as wrong)", "measured"),
        "accuracy_loss": m(head.accuracy_loss, "fraction", f"large-only accuracy - cascade's {at}"),
        "agreement_with_large": m(head.agreement_with_large, "fraction", f"cascade answer = large model's {at}"),
    })
    record.extra["sweep"] = [p.to_dict() for p in points]  # each point on the rounds' mean compute
    record.extra["link"] = asdict(link)
    record.extra["samples"] = len(data.labels)
    record.extra["large_compute_device"] = remote_device.name
    record.extra["large_compute_stand_in"] = stand_in
    bench.save(record)
    return record
