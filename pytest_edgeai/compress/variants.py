"""Quantised variants of a model, cached by (source sha256, method, its version, params,
calibration digest, onnxruntime version), returned as Model objects any backend loads.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import filecache
from ..errors import MethodUnavailable, QuantizationError
from ..models.model import Model
from .base import Calibration, get_method


def calibration_digest(calibration: Calibration | None) -> str | None:
    """sha256 over names, shapes, dtypes and bytes of every calibration feed."""
    if calibration is None:
        return None
    digest = hashlib.sha256()
    for feeds in calibration:
        for name in sorted(feeds):
            arr = np.ascontiguousarray(feeds[name])
            digest.update(f"{name}{arr.shape}{arr.dtype}".encode())
            digest.update(arr.tobytes())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    return filecache.cache_dir("variants")


def make_variant(model: Model, method: str, cache_dir: Path | None = None,
                 calibration: Calibration | None = None, **params: Any) -> Model:
    """The model quantised by ``method`` (built once, then read from the cache)."""
    if model.format != "onnx":
        raise QuantizationError(f"{model.name}: quantisation here works on ONNX models, not {model.format}")
    quantizer = get_method(method)
    reason = quantizer.unavailable()
    if reason:
        raise MethodUnavailable(f"{method}: {reason}")
    if quantizer.needs_calibration and calibration is None:
        raise QuantizationError(f"{model.name}: {method} needs calibration data (a list of feeds)")
    import onnxruntime

    digest = filecache.key(model.sha256(), method, quantizer.version, params,
                       calibration_digest(calibration) if quantizer.needs_calibration else None,
                       onnxruntime.__version__)
    target = (cache_dir or default_cache_dir()) / f"{model.name}-{method}-{digest[:16]}.onnx"
    path = filecache.build_once(target, lambda tmp: quantizer.quantize(model.path, tmp, params, calibration))
    return replace(model, name=f"{model.name}@{method}", path=path, source="variant",
                   params={**model.params, "variant_of": model.name, "method": method,
                           "quantization": dict(params)})


def build_variant(model: Model, method: str, cache_dir: Path | None, calibration: Calibration | None,
                  params: dict[str, Any]) -> Model | str:
    """:func:`make_variant` as a study a bench runs in the device's worker (the quantisers run calibration
    on a runtime): a method that is not installed comes back as its reason, a skip rather than a failure."""
    try:
        return make_variant(model, method, cache_dir, calibration, **params)
    except MethodUnavailable as exc:
        return str(exc)
