"""pytest-edgeai: characterise deep-learning inference on whatever accelerator is attached.

The public API: what the suites and a lab's own suites, backends and meters import, as
``from pytest_edgeai import Bench, metric, Device``. Everything else is internal and may move.

Attributes are imported when used (module ``__getattr__``), so ``import pytest_edgeai`` (which pytest
does for the plugin in every run) stays cheap: numpy, onnx and the runtimes load only when a name that
needs them is used. A name given as ``(module, attribute)`` is exported under another name than it has
in its module, where the bare name would be ambiguous at the package level.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str | tuple[str, str]] = {
    # devices, errors, the bench, records
    "Device": "devices", "KINDS": "devices", "TIERS": "devices", "ANY_MODEL": "devices",
    "EdgeAIError": "errors", "ConfigError": "errors", "ModelError": "errors", "BackendError": "errors",
    "DeviceUnavailable": "errors", "MeasurementError": "errors", "MeterError": "errors",
    "MeterUnavailable": "errors", "PlanError": "errors", "CascadeError": "errors",
    "QuantizationError": "errors", "CalibrationError": "errors", "MethodUnavailable": "errors",
    "Bench": "bench", "Record": "results.record", "metric": "results.record",
    "Profile": "measure.profiles", "over_budget": "measure.profiles", "plan_over_budget": "measure.profiles",
    "Model": "models.model", "model_from_file": "models.model",
    "non_tensor_outputs": "models.model", "seeded_twin": "models.zoo", "batch_problem": "measure.inputs",
    "Config": "config", "Link": "config",
    # claims: the vocabulary a suite or lab extends
    "ClaimChecker": "claims", "ClaimSpec": "claims", "ClaimResult": "claims", "define_claim": ("claims", "define"),
    # extending: a backend (see hookspecs.pytest_edgeai_backends) and a meter (pytest_edgeai_meters)
    "Backend": "backends.base", "Session": "backends.base", "Availability": "backends.base",
    "TensorSpec": "backends.base", "get_backend": "backends.base", "input_specs": "backends.base",
    "probe": "backends.base", "Meter": "energy", "EnergyReading": "energy", "IdleBaseline": "energy",
    # the throughput suite's detection pipeline and real inputs
    "NmsConfig": "models.detection", "summaries": "models.detection", "time_pipeline": "models.detection",
    "CROPS": "models.inputs", "evaluation_photos": "models.inputs",
    # claims judged on intervals, measured in interleaved rounds
    "estimate_metric": "claims", "rounds_ratio": "claims", "rounds_estimate": "claims", "unchecked": "claims",
    "find_against": "claims", "judge_ratio": "claims", "MISSED": "claims",
    "SWEEP_MODELS": "claims", "CAPACITY_MODEL": "claims", "PLACEMENT_MODEL": "claims",
    "Estimate": "measure.rounds", "Interleaved": "measure.rounds", "round_profile": "measure.rounds",
    "metered_round_profile": "measure.rounds", "windows_p90": "measure.rounds",
    "ratio_estimate": "measure.rounds", "best_of": "measure.rounds", "mean_estimate": "measure.rounds",
    "quantile_ci": "measure.stats", "median_ci": "measure.stats",
    "list_runs": "results.store", "load_run": "results.store",
    # the split suite
    "links_from_config": "split.network", "LOSSLESS": "split.study", "CALIBRATION": "split.study",
    "run_plan": "split.study", "study_file": "split.study", "study_plan": "split.study", "term_errors": "split.study",
    "netns": ("split.netns", ""),
    "split_plan": ("split.planner", "plan"),
    # the compression suite
    "cascade": ("compress.cascade", ""), "digits": ("compress.digits", ""), "model_scores": "compress.fidelity",
    "COMPRESSION_METHODS": ("compress.study", "METHODS"), "compression_study": ("compress.study", "study"),
    "calibration_set": "compress.study", "fidelity_inputs": "compress.study",
    "variants_cache_dir": ("compress.variants", "default_cache_dir"),
    # the concurrency suite (its folder's one way in)
    **{name: "concurrency" for name in (
        "MIB", "CapacityPlan", "ProcessRunner", "ServerPlan", "ThreadRunner", "available_bytes", "capacity_metrics",
        "loadgen_study", "measure_placement", "models_metrics", "placement_metrics", "plan_for", "plan_threads",
        "probe_capacity", "run_concurrent_models", "run_sweep", "run_tenants", "split_device", "step_metrics",
        "switching_metrics", "switching_study", "window_for", "worst_p90_rounds")},
    "LOADGEN_SCENARIOS": ("concurrency", "SCENARIOS"), "edgetpu_parameter_bytes": "backends.litert",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    """An exported name, from the module it lives in. Not kept here: the module's own object is the one that
    pickles (a study sent to a worker), and a module imported afresh (pytester restores ``sys.modules``
    between in-process runs) must not be shadowed by a stale copy."""
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'pytest_edgeai' has no attribute {name!r}")
    module, attr = (where, name) if isinstance(where, str) else where
    value = importlib.import_module(f"{__name__}.{module}")
    return getattr(value, attr) if attr else value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
