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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..errors import UnknownModelError
from ..filecache import build_once, cache_dir
from . import cnn_trad_fpool3, inception_v4, mobilenet_v2, ssd_mobilenet
from .inputs import INCEPTION, TF_OD_API, TORCHVISION, Preprocess
from .weights import TrainedWeights, seeded


@dataclass(frozen=True)
class Builder:
    name: str
    version: int  # bump when the graph a builder emits changes: it invalidates caches
    build: Callable[..., onnx.ModelProto]
    description: str
    task: str  # "classification" | "detection" | "keyword_spotting"
    input_kind: str  # "image" | "audio_features"
    preprocess: Preprocess | None = None  # how a photograph becomes its input (None: not an image model)
    trained: Mapping[str, TrainedWeights] = field(default_factory=dict)  # the builder's `weights` choices
    defaults: Mapping[str, Any] = field(default_factory=dict)  # parameters this entry presets

    def weights(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """What the model built with ``params`` carries: trained (source and hash) or seeded."""
        chosen = str(params.get("weights", "seeded"))
        return self.trained[chosen].describe() if chosen in self.trained else seeded(int(params.get("seed", 0)))

    def unavailable(self, params: Mapping[str, Any]) -> str | None:
        """Why the model cannot be built here (its trained weights are not installed), else None."""
        chosen = str({**self.defaults, **params}.get("weights"))
        return self.trained[chosen].unavailable() if chosen in self.trained else None


_MOBILENET: dict[str, Any] = {"task": "classification", "input_kind": "image", "preprocess": TORCHVISION,
                              "trained": mobilenet_v2.TRAINED}
ZOO: dict[str, Builder] = {b.name: b for b in (
    Builder("mobilenet_v2", 2, mobilenet_v2.build,
            "MobileNetV2 1.0, 224x224, torchvision layout (3.5 M params), seeded weights", **_MOBILENET),
    Builder("mobilenet_v2_imagenet", 2, mobilenet_v2.build,
            "MobileNetV2 1.0, 224x224, torchvision's trained ImageNet weights (3.5 M params)",
            **_MOBILENET, defaults={"weights": "imagenet"}),
    Builder("inception_v4", 1, inception_v4.build,
            "Inception-v4, 299x299, timm/Cadene layout (42.7 M params), seeded weights",
            "classification", "image", INCEPTION),
    Builder("ssd_mobilenet_v1", 1, ssd_mobilenet.build_v1,
            "SSD MobileNet V1 COCO, 300x300, 1917 anchors, 91 classes (6.8 M params), seeded weights",
            "detection", "image", TF_OD_API),
    Builder("ssd_mobilenet_v2", 1, ssd_mobilenet.build_v2,
            "SSD MobileNet V2 COCO, 300x300, 1917 anchors, 91 classes (16.8 M params), seeded weights",
            "detection", "image", TF_OD_API),
    Builder("cnn_trad_fpool3", 1, cnn_trad_fpool3.build,
            "cnn-trad-fpool3 keyword spotter, 32x40 log-mel, 4 targets (244 K params), seeded weights",
            "keyword_spotting", "audio_features"),
)}


def seeded_twin(name: str) -> str | None:
    """The zoo entry that builds the same graph as ``name`` with seeded weights (mobilenet_v2 for
    mobilenet_v2_imagenet), else None: the two take the same time and energy per inference, since weights'
    values change what a dense graph answers, not the work it does; only their outputs differ."""
    builder = ZOO.get(name)
    if builder is None or builder.defaults.get("weights", "seeded") == "seeded":
        return None
    return next((b.name for b in ZOO.values()
                 if b.build is builder.build and b.defaults.get("weights", "seeded") == "seeded"), None)


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
        bound = inspect.signature(builder.build).bind(**{**builder.defaults, **params})
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
                       ("input_kind", builder.input_kind),
                       ("weights", json.dumps(builder.weights(full), sort_keys=True))):
        model.metadata_props.add(key=key, value=value)
    return model


def cache_key(name: str, **params: Any) -> str:
    """sha256 of (name, builder version, sorted params, onnx version)."""
    builder = get_builder(name)
    full = resolve_params(name, **params)
    payload = json.dumps([name, builder.version, full, builder.weights(full), onnx.__version__], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def default_cache_dir() -> Path:
    """$EDGEAI_CACHE_DIR, else $XDG_CACHE_HOME/pytest-edgeai/models, else ~/.cache/..."""
    return cache_dir("models")


def cached_path(name: str, cache_dir: Path | None = None, **params: Any) -> Path:
    """Path of the model file, building it once; safe across concurrent processes."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{name}-{cache_key(name, **params)[:16]}.onnx"

    def produce(tmp: Path) -> None:
        tmp.write_bytes(build(name, **params).SerializeToString())

    return build_once(path, produce)


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
