"""What the onnxruntime quantisers share: pre-processing, the model's inputs, error wording.

Pre-processing (onnxruntime's ``quant_pre_process``: shape inference plus graph optimisation
that folds BatchNormalization into Conv) comes first because quantising an unfolded graph
leaves float BN between Q/DQ pairs: on the zoo's MobileNetV2 that made int8 static 1.6x slower
than fp32 on a 2-core AVX-512 VNNI CPU, folded it ran level with fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import QuantizationError
from .base import first_line


def ort_quantization() -> Any:
    """onnxruntime.quantization, or None when this onnxruntime lacks it."""
    try:
        from onnxruntime import quantization
    except ImportError:
        return None
    return quantization


def unavailable() -> str | None:
    if ort_quantization() is None:
        return "onnxruntime.quantization is not importable: pip install onnxruntime"
    return None


def preprocessed(src: Path, work: Path, params: dict[str, Any]) -> Path:
    """The model after quant_pre_process (or ``src`` itself when params say preprocess=False)."""
    if not params.get("preprocess", True):
        return src
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / f"{src.stem}.pre.onnx"
    try:
        quant_pre_process(str(src), str(out))
    except Exception as exc:
        raise QuantizationError(
            f"{src.name}: onnxruntime's quantisation pre-processing cannot handle it ({first_line(exc)}); "
            f"quantise without it with params preprocess = false") from None
    return out


def model_inputs(path: Path) -> dict[str, tuple[tuple[int | None, ...], str]]:
    """Graph inputs that are fed (not initializers): name -> (shape, numpy dtype name)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise QuantizationError(f"{path.name}: not a readable ONNX model: {first_line(exc)}") from None
    weights = {init.name for init in model.graph.initializer}
    out = {}
    for value in model.graph.input:
        if value.name in weights:
            continue
        ttype = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim)
        out[value.name] = (shape, onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type).name)
    return out


def refused(src: Path, method: str, exc: Exception) -> QuantizationError:
    return QuantizationError(f"{src.name}: {method} quantisation failed: {first_line(exc)}")
