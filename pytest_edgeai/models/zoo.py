"""The registry of reference workloads, deterministic building and an on-disk cache.

Why a cache: Inception-v4 is ~170 MB and takes seconds to build; suites in several
pytest-xdist workers ask for the same model at once, so the cache is keyed by builder
version and parameters and filled under a file lock with an atomic rename.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..filecache import build_once, cache_dir
from ..errors import UnknownModelError
from . import cnn_trad_fpool3, inception_v4, mobilenet_v2, ssd_mobilenet


@dataclass(frozen=True)
class Builder:
    name: str
    version: int  # bump when the graph a builder emits changes: it invalidates caches
    build: Callable[..., onnx.ModelProto]
    description: str
    task: str  # "classification" | "detection" | "keyword_spotting"
    input_kind: str  # "image" | "audio_features"


ZOO: dict[str, Builder] = {b.name: b for b in (
    Builder("mobilenet_v2", 1, mobilenet_v2.build,
            "MobileNetV2 1.0, 224x224, torchvision layout (3.5 M params)",
            "classification", "image"),
    Builder("inception_v4", 1, inception_v4.build,
            "Inception-v4, 299x299, timm/Cadene layout (42.7 M params)",
            "classification", "image"),
    Builder("ssd_mobilenet_v1", 1, ssd_mobilenet.build_v1,
            "SSD MobileNet V1 COCO, 300x300, 1917 anchors, 91 classes (6.8 M params)",
            "detection", "image"),
    Builder("ssd_mobilenet_v2", 1, ssd_mobilenet.build_v2,
            "SSD MobileNet V2 COCO, 300x300, 1917 anchors, 91 classes (16.8 M params)",
            "detection", "image"),
    Builder("cnn_trad_fpool3", 1, cnn_trad_fpool3.build,
            "cnn-trad-fpool3 keyword spotter, 32x40 log-mel, 4 targets (244 K params)",
            "keyword_spotting", "audio_features"),
)}


def get_builder(name: str) -> Builder:
    """The builder for ``name``, or UnknownModelError with a did-you-mean."""
    try:
        return ZOO[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(ZOO), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(ZOO))}."
        ) from None


def resolve_params(name: str, **params: Any) -> dict[str, Any]:
    """All of a builder's parameters, defaults filled in (TypeError for unknown ones)."""
    builder = get_builder(name)
    try:
        bound = inspect.signature(builder.build).bind(**params)
    except TypeError as exc:
        raise TypeError(f"bad parameters for model {name!r}: {exc}") from None
    bound.apply_defaults()
    return dict(sorted(bound.arguments.items()))


def build(name: str, **params: Any) -> onnx.ModelProto:
    """Build a zoo model; the same name and params always give the same bytes."""
    builder = get_builder(name)
    full = resolve_params(name, **params)
    model = builder.build(**full)
    model.doc_string = builder.description
    model.producer_version = str(builder.version)
    for key, value in (("builder", builder.name), ("builder_version", str(builder.version)),
                       ("params", json.dumps(full, sort_keys=True)), ("task", builder.task),
                       ("input_kind", builder.input_kind)):
        model.metadata_props.add(key=key, value=value)
    return model


def cache_key(name: str, **params: Any) -> str:
    """sha256 of (name, builder version, sorted params, onnx version)."""
    builder = get_builder(name)
    payload = json.dumps([name, builder.version, resolve_params(name, **params),
                          onnx.__version__], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def default_cache_dir() -> Path:
    """$EDGEAI_CACHE_DIR, else $XDG_CACHE_HOME/pytest-edgeai/models, else ~/.cache/..."""
    return cache_dir("models")


def cached_path(name: str, cache_dir: Path | None = None, **params: Any) -> Path:
    """Path of the model file, building it once; safe across concurrent processes."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{name}-{cache_key(name, **params)[:16]}.onnx"
    return build_once(path, lambda tmp: tmp.write_bytes(build(name, **params).SerializeToString()))


# Inputs of these ops that hold state or constants, not learned weights.
_NON_WEIGHT_INPUTS = {"BatchNormalization": {3, 4}, "Clip": {1, 2}, "Reshape": {1},
                      "Pad": {1, 2, 3}, "Resize": {1, 2, 3}, "Slice": {1, 2, 3, 4}}


def parameter_count(model: onnx.ModelProto) -> int:
    """Elements of floating-point initializers that are learned weights.

    Counted: conv/FC weights and biases, BN scale (gamma) and bias (beta), as torchvision,
    timm and TF ``trainable_variables`` count. Excluded: BN running mean/variance,
    Clip bounds, shape/pad/slice constants, and any non-float initializer.
    """
    excluded: set[str] = set()
    for node in model.graph.node:
        for idx in _NON_WEIGHT_INPUTS.get(node.op_type, ()):
            if idx < len(node.input):
                excluded.add(node.input[idx])
    total = 0
    for init in model.graph.initializer:
        if init.name in excluded:
            continue
        np_type = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
        if not np.issubdtype(np_type, np.floating):
            continue
        total += int(np.prod(init.dims, dtype=np.int64))
    return total
