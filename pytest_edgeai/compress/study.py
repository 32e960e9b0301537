"""Measure a model's quantised variants on one device: size, speed, fidelity against fp32.

The fp32 model is measured and recorded first; each variant is then built (or read from the
cache), measured through the same bench and compared with fp32 on one deterministic input set.
A method that cannot handle the model leaves an error record and its message, never a lost
fp32 figure; a method whose package is missing is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EdgeAIError, MethodUnavailable, QuantizationError
from ..measure.inputs import make_feeds
from ..models.inputs import (
    calibration_photos,
    evaluation_photos,
    image_layout,
    preprocess_for,
)
from ..results.record import metric
from .base import METHODS as REGISTERED
from .base import Calibration
from .fidelity import Fidelity, compare, model_scores, static_batch
from .variants import build_variant

if TYPE_CHECKING:
    from ..backends.base import TensorSpec
    from ..bench import Bench
    from ..models.model import Model
    from ..results.record import Record

METHODS = tuple(REGISTERED)  # every registered quantiser, in its order


@dataclass
class VariantResult:
    method: str
    record: Record | None = None  # the derived size/speed/fidelity record
    fidelity: Fidelity | None = None
    error: str | None = None  # the method failed on this model
    skipped: str | None = None  # the method is not installed here
    model: Model | None = None  # the variant itself, for a ratio measured side by side with fp32

    @property
    def ok(self) -> bool:
        return self.record is not None and self.error is None


@dataclass
class Study:
    fp32: Record
    variants: list[VariantResult] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [v.error for v in self.variants if v.error]

    def by_method(self, method: str) -> VariantResult | None:
        return next((v for v in self.variants if v.method == method), None)

    def raise_errors(self) -> None:
        """After the claims: one message for every method that failed on the model."""
        if self.errors:
            raise QuantizationError("; ".join(self.errors))


def deterministic_feeds(specs: Sequence[TensorSpec], n: int, seed: int,
                        overrides: dict[str, list[int]] | None = None) -> dict[str, np.ndarray]:
    """``n`` seeded random samples (rounded up to whole static batches) stacked on axis 0."""
    batch = static_batch(specs) or n
    parts = [make_feeds(list(specs), batch, seed=seed + i, overrides=overrides)
             for i in range(-(-n // batch))]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclass
class FidelityInputs:
    """What variants are compared on and calibrated with, and what the record says they are."""

    feeds: dict[str, np.ndarray]
    calibration: Calibration
    described: dict[str, Any]


def fidelity_inputs(model: Model, specs: Sequence[TensorSpec], n: int, calibration: int,
                    overrides: dict[str, list[int]] | None = None) -> FidelityInputs:
    """An image model: views of real photographs preprocessed as it declares (calibration on other
    photographs, every ``k``-th view up to ``calibration``); any other: seeded random feeds."""
    shape = tuple(overrides[specs[0].name]) if overrides and specs[0].name in overrides else tuple(specs[0].shape)
    if len(specs) == 1 and image_layout(shape) and np.dtype(specs[0].dtype) == np.float32:
        pre = preprocess_for(model.preprocess, model.params, shape)
        evaluation, calib = evaluation_photos(pre), calibration_photos(pre)
        step = max(1, len(calib) // calibration)
        cal = calib.tensors()[::step][:calibration]
        return FidelityInputs({specs[0].name: evaluation.tensors()}, [{specs[0].name: t[None]} for t in cal],
                              {"evaluation": evaluation.describe(),
                               "calibration": {**calib.describe(), "views": len(cal), "every": step}})
    feeds = deterministic_feeds(specs, n, seed=0, overrides=overrides)
    cal_feeds = deterministic_feeds(specs, calibration, seed=10_000, overrides=overrides)
    return FidelityInputs(feeds, calibration_set(cal_feeds, 1),
                          {"evaluation": {"name": "seeded random normal", "views": n},
                           "calibration": {"name": "seeded random normal (other seeds)", "views": calibration}})


def calibration_set(feeds: dict[str, np.ndarray], batch: int) -> Calibration:
    """Split stacked feeds into calibration samples of ``batch`` rows."""
    total = next(iter(feeds.values())).shape[0]
    return [{k: v[i:i + batch] for k, v in feeds.items()} for i in range(0, total - batch + 1, batch)]


def study(bench: Bench, model: Model, feeds: dict[str, np.ndarray], calibration: Calibration,
          cache_dir: Path | None = None, methods: Sequence[str] = METHODS,
          labels: np.ndarray | None = None, classes: np.ndarray | None = None,
          params: dict[str, dict[str, Any]] | None = None, input_set: dict[str, Any] | None = None) -> Study:
    """fp32 first, then every method; ``labels`` (with the score columns' ``classes``) adds accuracy."""
    fp32 = bench.offline(model, 1)
    reference = bench.call(model_scores, model, bench.device, feeds)
    result = Study(fp32)
    for method in methods:
        try:
            variant = bench.call(build_variant, model, method, cache_dir, calibration,
                                 (params or {}).get(method, {}), exclusive=False)  # building, not timing
            if isinstance(variant, str):
                raise MethodUnavailable(variant)
            measured = bench.offline(variant, 1)
            candidate = bench.call(model_scores, variant, bench.device, feeds)
            fidelity = compare(reference, candidate, top1=model.task != "detection")
        except MethodUnavailable as exc:
            result.variants.append(VariantResult(method, skipped=str(exc)))
            continue
        except EdgeAIError as exc:
            record = bench.new_record(model, {"name": "quantise", "method": method})
            bench.fail_record(record, str(exc))
            result.variants.append(VariantResult(method, record=record, error=str(exc)))
            continue
        metrics = _metrics(model, variant, fp32, measured, fidelity)
        if labels is not None and classes is not None:
            metrics.update(_accuracy(reference, candidate, labels, classes))
        record = bench.derived(variant, "compression", metrics, inputs=[fp32, measured], method=method,
                               source_model=model.name, fidelity_samples=fidelity.samples, input_set=input_set)
        if fidelity.degenerate:
            record.warnings.append(fidelity.degenerate)
            bench.save(record)
        result.variants.append(VariantResult(method, record=record, fidelity=fidelity, model=variant))
    return result


def _metrics(model: Model, variant: Model, fp32: Record, measured: Record,
             fidelity: Fidelity) -> dict[str, dict[str, Any]]:
    size, base = variant.path.stat().st_size, model.path.stat().st_size
    speed, base_speed = measured.metric("throughput_ips"), fp32.metric("throughput_ips")
    same = f"on {fidelity.samples} fixed inputs (scenario.input_set), against fp32 {model.name}"

    m = metric
    out = {
        "size_bytes": m(size, "bytes", "file size of the variant"),
        "size_reduction": m(base / size, "x", "fp32 file size / variant file size", "derived"),
        "speedup": m(speed / base_speed if speed and base_speed else None, "x",
                     "offline batch-1 throughput of the variant / fp32, one window each, one after the other: the "
                     "machine's drift between them is in it (speedup_interleaved, measured side by side, is what a "
                     "claim reads)", "derived"),
        "mean_cosine": m(fidelity.mean_cosine, "ratio", f"mean per-sample cosine of the score output {same}"),
        "max_abs_error": m(fidelity.max_abs_error, "abs", f"largest |variant - fp32| of the score output {same}"),
    }
    if fidelity.top1_agreement is not None:
        out["top1_agreement"] = m(fidelity.top1_agreement, "fraction", f"argmax agrees with fp32 {same}")
    if fidelity.top5_agreement is not None:
        out["top5_agreement"] = m(fidelity.top5_agreement, "fraction", f"fp32's top-1 is in the variant's top 5 {same}")
    if fidelity.top1_prob_change is not None:
        out["top1_prob_change"] = m(fidelity.top1_prob_change, "probability",
                                    f"mean |p_variant - p_fp32| of fp32's top-1 class {same}")
        out["top1_prob_change_max"] = m(fidelity.top1_prob_change_max, "probability",
                                        f"largest |p_variant - p_fp32| of fp32's top-1 class {same}")
    return out


def _accuracy(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray,
              classes: np.ndarray) -> dict[str, dict[str, Any]]:
    def acc(scores: np.ndarray) -> float:
        return float(np.mean(classes[np.argmax(scores, axis=1)] == labels))

    source = f"top-1 against ground truth on {len(labels)} held-out inputs"
    return {"accuracy": {"value": acc(candidate), "unit": "fraction", "method": "measured", "source": source},
            "accuracy_fp32": {"value": acc(reference), "unit": "fraction", "method": "measured", "source": source}}
