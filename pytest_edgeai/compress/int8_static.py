"""int8 static (QDQ): activation ranges calibrated on a representative set, QuantizeLinear /
DequantizeLinear pairs around each op, the format accelerators' toolchains (TensorRT, OpenVINO,
QNN) consume.

Calibration data is checked against the model's inputs before onnxruntime sees it, so a wrong
shape is one clear line (CalibrationError), not a traceback from inside the calibrator.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CalibrationError
from . import ortquant
from .base import Calibration


def check_calibration(calibration: Calibration | None, inputs: dict[str, tuple[tuple[int | None, ...], str]],
                      model_name: str) -> Calibration:
    """Every sample feeds exactly the model's inputs with a fitting rank, static dims and dtype; returns
    the samples."""
    if not calibration:
        raise CalibrationError(f"{model_name}: int8 static quantisation needs calibration data "
                               f"(a list of feeds for inputs {', '.join(inputs)})")
    for i, feeds in enumerate(calibration):
        if set(feeds) != set(inputs):
            raise CalibrationError(f"{model_name}: calibration sample {i} feeds {sorted(feeds)}, "
                                   f"the model's inputs are {sorted(inputs)}")
        for name, array in feeds.items():
            shape, dtype = inputs[name]
            arr = np.asarray(array)
            fits = arr.ndim == len(shape) and all(d is None or d == a for d, a in zip(shape, arr.shape))
            if not fits:
                want = ["?" if d is None else d for d in shape]
                raise CalibrationError(f"{model_name}: calibration sample {i}, input '{name}' has shape "
                                       f"{list(arr.shape)}; the model takes {want}")
            if arr.dtype != np.dtype(dtype):
                raise CalibrationError(f"{model_name}: calibration sample {i}, input '{name}' is {arr.dtype}; "
                                       f"the model takes {dtype}")
    return calibration


class StaticInt8Quantizer:
    name = "int8_static"
    version = 1
    needs_calibration = True

    def unavailable(self) -> str | None:
        return ortquant.unavailable()

    def quantize(self, src: Path, dst: Path, params: dict[str, Any],
                 calibration: Calibration | None) -> None:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        samples = check_calibration(calibration, ortquant.model_inputs(src), src.name)

        class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type information
            def __init__(self) -> None:
                self._it = iter(samples)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._it, None)

        with tempfile.TemporaryDirectory(dir=dst.parent) as work:
            pre = ortquant.preprocessed(src, Path(work), params)
            try:
                quantize_static(
                    str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=bool(params.get("per_channel", False)),
                    activation_type=getattr(QuantType, params.get("activation_type", "QUInt8")),
                    weight_type=getattr(QuantType, params.get("weight_type", "QInt8")),
                    calibrate_method=getattr(CalibrationMethod, params.get("calibrate_method", "MinMax")))
            except Exception as exc:
                raise ortquant.refused(src, self.name, exc) from None
