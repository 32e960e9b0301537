"""Which way is better for every metric the package writes: the comparison's ``direction`` against the
direction of the claim on the same figure (``min_``: higher is better, ``max_``: lower), and a table of the
rest, so a new metric must be given a direction before it is compared."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_edgeai
from pytest_edgeai.claims import CLAIMS
from pytest_edgeai.results.compare import HIGHER, LOWER, UNKNOWN, direction, speed_kind

ROOT = Path(pytest_edgeai.__file__).parent
SUITES = ROOT.parent / "suites"

# claim -> (suite, the metric it is checked on, that metric's unit), read from the suites' check() calls
CLAIMED = {
    "min_inferences_per_s": ("throughput", "throughput_ips", "inferences/s"),
    "max_p90_latency_ms": ("throughput", "latency_p90_ms", "ms"),
    "min_batching_speedup": ("throughput", "batching_speedup", "x"),
    "max_joules_per_inference": ("energy", "joules_per_inference", "J"),
    "min_inferences_per_s_per_w": ("energy", "inferences_per_s_per_w", "inferences/s/W"),
    "min_inferences_per_s_per_usd": ("energy", "inferences_per_s_per_usd", "inferences/s/USD"),
    "min_size_reduction": ("compression", "size_reduction", "x"),
    "min_int8_speedup": ("compression", "speedup_interleaved", "x"),
    "min_top1_agreement": ("compression", "top1_agreement", "fraction"),
    "min_top5_agreement": ("compression", "top5_agreement", "fraction"),
    "max_top1_prob_change": ("compression", "top1_prob_change", "probability"),
    "min_cascade_latency_reduction": ("compression", "latency_reduction", "x"),
    "max_cascade_accuracy_loss": ("compression", "accuracy_loss", "fraction"),
    "min_tenants": ("concurrency", "observed_max_tenants", "tenants"),
    "min_aggregate_speedup": ("concurrency", "aggregate_speedup_interleaved_at_4", "x"),
    "max_tenant_p90_latency_ms": ("concurrency", "worst_tenant_p90_rounds_at_4", "ms"),
    "max_tenants_prediction_error": ("concurrency", "prediction_error", "fraction"),
    "min_placement_speedup": ("concurrency", "placement_speedup_rounds", "x"),
    "min_best_cut_saving": ("split", "best_cut_saving", "x"),
    "min_cut_saving": ("split", "cut_saving", "x"),
    "max_prediction_error": ("split", "prediction_error", "fraction"),
}
# claims whose figure has no better direction, and why (compare.NO_DIRECTION)
UNDIRECTED_CLAIMS = {"max_saving_depth_layers": ("split", "saving_depth_layers", "layers")}
# claims on no metric of a record: a ratio of two devices' records (suites/test_energy.py RATIOS), an extra
NOT_ON_A_METRIC = {"min_ips_per_usd_ratio", "min_ips_per_w_ratio", "min_edgetpu_op_fraction"}

# every other metric name the package and suites write ('{}' stands for a model, batch or tenant count)
EXPECTED = {
    HIGHER: {"accuracy", "accuracy_fp32", "accuracy_cascade", "accuracy_large", "accuracy_small",
             "aggregate_speedup_at_{}", "agreement_with_large", "best_single_ips", "concurrency_gain",
             "best_cut_saving_vs_jpeg", "cut_saving_vs_jpeg", "max_tenants_run", "mean_cosine",
             "measured_throughput_per_s", "placement_speedup", "plan_top1_agreement", "predicted_budget_tenants",
             "predicted_max_tenants", "predicted_throughput_per_s", "server_max_qps", "speedup", "speedup_b{}",
             "tenant_throughput_min_ips", "tenants", "uncalibrated_predicted_throughput_per_s", "{}_alone_ips",
             "{}_together_ips"},
    LOWER: {"baseline_latency_ms", "bytes_per_input_compressed", "bytes_per_input_raw",
            "calibrated_predicted_latency_ms", "cascade_latency_ms", "first_inference_ms", "fraction_offloaded",
            "idle_w", "input_bytes_compressed", "input_compressed_bytes", "input_jpeg_bytes", "input_raw_bytes",
            "joules_per_inference_above_idle", "latency_cv", "latency_mean_ms", "latency_min_ms", "latency_max_ms",
            "latency_p50_ms", "latency_p99_ms", "latency_stddev_ms", "max_abs_error", "max_abs_output_error",
            "mean_w", "mean_w_above_idle", "measured_latency_ms", "mj_per_query", "peak_w", "predicted_latency_ms",
            "runtime_overhead_mb", "size_bytes", "switch_overhead_ms", "tenant_footprint_mb", "throughput_error",
            "top1_prob_change_max", "uncalibrated_prediction_error", "{}_latency_median_ms", "{}_latency_p90_ms"},
    UNKNOWN: {"available_mb", "best_batch", "detections_per_image", "jain_index", "layer_boundaries", "max_share",
              "min_share", "parameter_cache_models"},
}


def _key(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _is_entry(node: ast.expr) -> bool:
    """A metric entry as the code writes one: metric(...), estimate_metric(...), a local m(...), or a
    literal {"value": ..., "unit": ...}."""
    if isinstance(node, ast.Call):
        func = node.func
        return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")) in (
            "metric", "estimate_metric", "m")
    return isinstance(node, ast.Dict) and {"value", "unit"} <= {_key(k) for k in node.keys if k is not None}


def written_metrics() -> dict[str, tuple[str, str]]:
    """Every metric name written in pytest_edgeai/ and suites/ -> (its unit where literal, the file)."""
    out: dict[str, tuple[str, str]] = {}
    for path in [*ROOT.rglob("*.py"), *SUITES.rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            pairs: list[tuple[ast.expr, ast.expr]] = []
            if isinstance(node, ast.Dict):
                pairs = [(k, v) for k, v in zip(node.keys, node.values) if k is not None]
            elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
                pairs = [(node.targets[0].slice, node.value)]
            for k, v in pairs:
                name = _key(k)
                if name and _is_entry(v):
                    unit = v.args[1] if isinstance(v, ast.Call) and len(v.args) > 1 else None
                    out[name] = (unit.value if isinstance(unit, ast.Constant) else "", path.name)
    return out


@pytest.mark.parametrize("claim", sorted(CLAIMED))
def test_a_claimed_figure_is_better_the_way_its_claim_says(claim):
    suite, name, unit = CLAIMED[claim]
    assert claim in CLAIMS[suite]
    assert direction(name, unit) == (HIGHER if claim.startswith("min_") else LOWER), (claim, name)


def test_loss_change_and_error_figures_are_lower_is_better_whatever_they_are_of():
    """The words of the figure they are OF (accuracy, top1, throughput) once made them higher-is-better."""
    for name, unit in (("accuracy_loss", "fraction"), ("top1_prob_change", "probability"),
                       ("top1_prob_change_max", "probability"), ("throughput_error", "fraction")):
        assert direction(name, unit) == LOWER, name
    assert direction("mean_cosine", "ratio") == HIGHER  # a similarity


def test_every_claim_is_in_the_table_and_every_written_metric_has_a_decided_direction():
    assert set(CLAIMED) | set(UNDIRECTED_CLAIMS) | NOT_ON_A_METRIC >= {c for claims in CLAIMS.values() for c in claims}
    for suite, name, unit in UNDIRECTED_CLAIMS.values():
        assert direction(name, unit) == UNKNOWN
    written = written_metrics()
    assert len(written) > 60  # the scan finds the metrics (it is not vacuous)
    decided = {n for names in EXPECTED.values() for n in names} | {m for _, m, _ in CLAIMED.values()} | {
        m for _, m, _ in UNDIRECTED_CLAIMS.values()}
    decided |= {"aggregate_speedup_interleaved_at_{}", "worst_tenant_p90_rounds_at_{}"}
    new = sorted(set(written) - decided)
    assert not new, f"metrics with no direction decided in this test's table: {new}"
    for sense, names in EXPECTED.items():
        for name in names:
            unit = written.get(name, ("", ""))[0] or ("ms" if name.endswith("_ms") else "")
            assert direction(name.replace("{}", "mobilenet_v2"), unit) == sense, (name, unit)


def test_per_dollar_throughput_is_canary_corrected_like_throughput_and_per_watt_is_not():
    assert speed_kind("throughput_ips", "inferences/s") == 1
    assert speed_kind("inferences_per_s_per_usd", "inferences/s/USD") == 1
    assert speed_kind("inferences_per_s_per_w", "inferences/s/W") == 0
    assert speed_kind("joules_per_inference", "J") == 0
