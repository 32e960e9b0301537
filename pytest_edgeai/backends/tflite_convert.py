"""ONNX -> TFLite conversion (fp32, and full-integer int8 with a representative dataset).

The path is onnx2tf (ONNX -> TensorFlow SavedModel, NCHW inputs transposed to NHWC) and then
TensorFlow's own TFLiteConverter, which does the int8 calibration. With ``batch`` the model's dynamic
batch is fixed to that number (onnx2tf's ``batch_size``: "fixes the dynamic batch size to the specified
numeric batch size"), so every tensor has a static size, as edgetpu_compiler requires. Results are cached like the
zoo: keyed by the model's bytes, the quantisation and the converter versions, filled under a
file lock with an atomic rename, so parallel workers convert once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import filecache
from ..errors import BackendError
from ..filecache import build_once
from ..registry import distribution_version

if TYPE_CHECKING:
    from ..models.model import Model

QUANTIZATIONS = ("fp32", "int8")
CONVERTER_VERSION = 2  # bump when the conversion below changes: it invalidates caches
CALIBRATION_SAMPLES = 32
CALIBRATION_SEED = 0


@dataclass(frozen=True)
class Converted:
    """A converted model and how it was made (recorded with every result on it)."""

    path: Path
    quantization: str
    calibration: str
    tool: str


def default_cache_dir() -> Path:
    return filecache.cache_dir("tflite")


def _tools() -> Any:
    """onnx2tf and tensorflow. Importing onnx2tf sets the process's recursion limit to the C int maximum
    (onnx2tf.py: ``sys.setrecursionlimit(2147483647)``), which turns any deep recursion anywhere later
    (a deeply nested JSON record, say) into a segfault instead of a RecursionError: the limit is put back
    at once, and raised only while onnx2tf converts."""
    before = sys.getrecursionlimit()
    try:
        import onnx2tf
        import tensorflow as tf
    except ImportError as exc:
        raise BackendError(f"converting ONNX to TFLite needs tensorflow and onnx2tf ({exc}): "
                           f"pip install 'pytest-edgeai[tflite-convert]', or give a .tflite model") from None
    finally:
        _ONNX2TF_LIMIT[0] = max(sys.getrecursionlimit(), _ONNX2TF_LIMIT[0])
        # onnx2tf imported earlier by someone else: the limit it replaced is gone; Python's default it is
        sys.setrecursionlimit(before if before < ONNX2TF_SETS else PYTHON_DEFAULT_LIMIT)
    return onnx2tf, tf


def converter_missing() -> str | None:
    """Why ONNX cannot be converted to TFLite here (what to install), or None when it can."""
    try:
        _tools()
    except BackendError as exc:
        return str(exc)
    return None


ONNX2TF_SETS = 2147483647
PYTHON_DEFAULT_LIMIT = 1000
_ONNX2TF_LIMIT = [0]  # the recursion limit onnx2tf asked for when it was imported


@contextlib.contextmanager
def _onnx2tf_recursion() -> Iterator[None]:
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, _ONNX2TF_LIMIT[0]))
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def cache_key(model: Model, quantization: str, batch: int | None = None) -> str:
    payload = json.dumps([model.sha256(), quantization, batch, CONVERTER_VERSION, CALIBRATION_SAMPLES, CALIBRATION_SEED,
                          distribution_version("tensorflow", "tensorflow-cpu"), distribution_version("onnx2tf")])
    return hashlib.sha256(payload.encode()).hexdigest()


def cached_tflite(model: Model, quantization: str = "fp32", cache_dir: Path | None = None,
                  batch: int | None = None) -> Path | None:
    """The converted file if an earlier conversion left it in the cache, without converting."""
    path = _target(model, quantization, Path(cache_dir) if cache_dir else default_cache_dir(), batch)
    return path if path.exists() else None


def _target(model: Model, quantization: str, cache_dir: Path, batch: int | None = None) -> Path:
    shape = f"-b{batch}" if batch else ""
    return cache_dir / f"{model.name}-{quantization}{shape}-{cache_key(model, quantization, batch)[:16]}.tflite"


def to_tflite(model: Model, quantization: str = "fp32", cache_dir: Path | None = None,
              batch: int | None = None) -> Converted:
    """The model as .tflite, converted once per (bytes, quantisation, batch, tool versions); ``batch``
    fixes a dynamic batch (static shapes), None keeps it free."""
    if quantization not in QUANTIZATIONS:
        raise BackendError(f"unknown TFLite quantisation {quantization!r}; known: {', '.join(QUANTIZATIONS)}")
    if model.format == "tflite":
        return Converted(model.path, "as given", "none", "none")
    if model.format != "onnx":
        raise BackendError(f"{model.path}: only ONNX models can be converted to TFLite, not {model.format}")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = _target(model, quantization, cache_dir, batch)
    calibration = (f"{CALIBRATION_SAMPLES} seeded standard-normal samples (seed {CALIBRATION_SEED})"
                   if quantization == "int8" else "none")
    tool = (f"onnx2tf {distribution_version('onnx2tf')} + tensorflow "
            f"{distribution_version('tensorflow', 'tensorflow-cpu')}")
    def produce(tmp: Path) -> None:
        tmp.write_bytes(_convert(model, quantization, batch))

    build_once(path, produce)
    return Converted(path, quantization, calibration, tool)


def _convert(model: Model, quantization: str, batch: int | None = None) -> bytes:
    onnx2tf, tf = _tools()
    work = Path(tempfile.mkdtemp(prefix="edgeai-onnx2tf-"))
    try:
        source = work / "model.onnx"  # onnx2tf rewrites its input file (op names): never give it the cache's
        shutil.copyfile(model.path, source)
        try:
            with _onnx2tf_recursion():
                onnx2tf.convert(input_onnx_file_path=str(source), output_folder_path=str(work),
                                non_verbose=True, output_signaturedefs=True, batch_size=batch)
        except BaseException as exc:  # onnx2tf calls sys.exit on some unsupported graphs
            raise BackendError(f"{model.path}: onnx2tf cannot convert it: {type(exc).__name__}: {exc}") from None
        if quantization == "fp32":
            produced = sorted(work.glob("model_float32.tflite"))
            if not produced:
                raise BackendError(f"{model.path}: onnx2tf wrote no float32 .tflite in {work}")
            return produced[0].read_bytes()
        return _full_integer(tf, work, model)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _full_integer(tf: Any, saved_model: Path, model: Model) -> bytes:
    """int8 weights and activations, int8 input and output (what the EdgeTPU compiler needs)."""
    import numpy as np

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    specs = signature.structured_input_signature[1]

    def representative() -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng(CALIBRATION_SEED)
        for _ in range(CALIBRATION_SAMPLES):
            yield {name: rng.standard_normal([d or 1 for d in spec.shape]).astype(np.float32)
                   for name, spec in specs.items()}

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        return bytes(converter.convert())
    except Exception as exc:
        raise BackendError(f"{model.path}: TensorFlow cannot quantise it to full-integer int8: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None

