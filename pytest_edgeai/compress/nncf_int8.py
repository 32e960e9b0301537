"""int8 through OpenVINO's NNCF post-training quantisation, on the ONNX model itself.

``nncf.quantize`` takes an ``onnx.ModelProto`` and an ``nncf.Dataset`` of feeds and returns a
QDQ ONNX model that any backend here can load (OpenVINO reads it natively). NNCF is optional:
without it the method reports itself unavailable with the install line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import QuantizationError
from .base import Calibration, first_line
from .int8_static import check_calibration
from .ortquant import model_inputs


class NncfInt8Quantizer:
    name = "nncf_int8"
    version = 1
    needs_calibration = True

    def unavailable(self) -> str | None:
        try:
            import nncf  # noqa: F401
        except ImportError as exc:
            return f"nncf is not importable ({exc}): pip install nncf"
        return None

    def quantize(self, src: Path, dst: Path, params: dict[str, Any],
                 calibration: Calibration | None) -> None:
        import nncf
        import onnx

        samples = check_calibration(calibration, model_inputs(src), src.name)
        preset = getattr(nncf.QuantizationPreset, params.get("preset", "PERFORMANCE"))
        try:
            quantized = nncf.quantize(onnx.load(str(src)), nncf.Dataset(list(samples)),
                                      preset=preset, subset_size=len(samples))
            onnx.save(quantized, str(dst))
        except Exception as exc:
            raise QuantizationError(f"{src.name}: nncf_int8 quantisation failed: {first_line(exc)}") from None
