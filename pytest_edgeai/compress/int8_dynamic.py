"""int8 dynamic: weights quantised offline, activations quantised at run time per batch.

No calibration data; onnxruntime's ``quantize_dynamic``. On CPUs it mostly pays off for
MatMul-heavy models (transformers, MLPs); convolutions run ConvInteger, often slower than fp32.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from . import ortquant
from .base import Calibration


class DynamicInt8Quantizer:
    name = "int8_dynamic"
    version = 1
    needs_calibration = False

    def unavailable(self) -> str | None:
        return ortquant.unavailable()

    def quantize(self, src: Path, dst: Path, params: dict[str, Any],
                 calibration: Calibration | None) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory(dir=dst.parent) as work:
            pre = ortquant.preprocessed(src, Path(work), params)
            try:
                quantize_dynamic(str(pre), str(dst), per_channel=bool(params.get("per_channel", False)),
                                 weight_type=getattr(QuantType, params.get("weight_type", "QInt8")))
            except Exception as exc:
                raise ortquant.refused(src, self.name, exc) from None
