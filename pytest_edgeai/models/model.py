"""A model the harness can load: a zoo workload built on demand or a user's file."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError, did_you_mean
from .inputs import Preprocess

FORMATS = {".onnx": "onnx", ".tflite": "tflite", ".xml": "openvino-ir", ".engine": "tensorrt", ".plan": "tensorrt",
           ".pt": "torch"}


@dataclass(frozen=True)
class Model:
    """Where a model lives and what it is; the identity a result record carries."""

    name: str
    path: Path
    format: str
    source: str  # "zoo" or "file"
    params: dict[str, Any] = field(default_factory=dict)
    task: str = ""
    input_kind: str = ""
    weights: dict[str, Any] = field(default_factory=lambda: {"kind": "file", "note": "whatever the file holds"})
    preprocess: Preprocess | None = None  # declared by the zoo builder; a file's comes from params.preprocess

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        """The model's part of a result record."""
        return {
            "name": self.name,
            "source": self.source,
            "format": self.format,
            "path": str(self.path),
            "size_bytes": self.path.stat().st_size,
            "params": dict(self.params),
            "task": self.task,
            "weights": dict(self.weights),
        }


def non_tensor_outputs(model: Model) -> str | None:
    """Which of an ONNX model's outputs are not tensors (skl2onnx's ZipMap gives a sequence of maps, one dict
    of class -> probability per sample), said in words; None when every output is a tensor. Studies that
    compare or cut output tensors (quantised fidelity, split points) do not apply to such a model."""
    if model.format != "onnx":
        return None
    return _non_tensor_outputs(str(model.path), model.path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _non_tensor_outputs(path: str, mtime_ns: int) -> str | None:
    import onnx

    try:
        graph = onnx.load(path, load_external_data=False).graph
    except Exception:  # not readable: the study that loads it says why, in its own words
        return None
    zipmap = any(node.op_type == "ZipMap" for node in graph.node)
    odd = {o.name: o.type for o in graph.output if o.type.WhichOneof("value") != "tensor_type"}
    if not odd:
        return None

    def kind(value: onnx.TypeProto) -> str:
        which = str(value.WhichOneof("value")).removesuffix("_type")
        return f"sequence of {kind(value.sequence_type.elem_type)}s" if which == "sequence" else which

    kinds = ", ".join(f"{name} is a {kind(t)}" for name, t in odd.items())
    return (f"its output{'s' if len(odd) > 1 else ''} {kinds}, not a tensor"
            + (" (skl2onnx's ZipMap: per-sample dicts of class probabilities; export with "
               "options={id(classifier): {'zipmap': False}} for a tensor)" if zipmap else ""))


def model_from_file(path: str | Path, name: str | None = None) -> Model:
    """A user's model file, checked for existence and a known format."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(f"model file {p}: not found or not a file")
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ModelError(
            f"model file {p}: unknown format '{p.suffix}'; known: {', '.join(sorted(FORMATS))}"
        )
    return Model(name=name or p.stem, path=p.resolve(), format=fmt, source="file")


def resolve_model(ref: str, cache_dir: Path | None = None, **params: Any) -> Model:
    """A zoo name (built and cached on first use) or a path to a model file."""
    from . import zoo

    if ref in zoo.ZOO:
        builder = zoo.ZOO[ref]
        full = zoo.resolve_params(ref, **params)
        path = zoo.cached_path(ref, cache_dir or zoo.default_cache_dir(), **params)
        size = full.get("resolution")
        return Model(
            name=ref, path=path, format="onnx", source="zoo", params=dict(params),
            task=builder.task, input_kind=builder.input_kind, weights=builder.weights(full),
            preprocess=builder.preprocess.at(size) if builder.preprocess and size else builder.preprocess,
        )
    if Path(ref).suffix.lower() in FORMATS or Path(ref).exists():
        return model_from_file(ref)
    raise ModelError(
        f"unknown model '{ref}'{did_you_mean(ref, zoo.ZOO)}: not a zoo name "
        f"({', '.join(sorted(zoo.ZOO))}) nor a model file"
    )
