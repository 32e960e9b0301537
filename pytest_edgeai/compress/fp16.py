"""fp16: every float32 weight and activation stored as float16, inputs and outputs kept float32.

Uses onnxruntime's own converter (onnxruntime.transformers.float16, shipped in the onnxruntime
wheel), so no extra package is needed; ``keep_io_types`` keeps the model's feed unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import QuantizationError
from .base import Calibration, first_line


class Fp16Quantizer:
    name = "fp16"
    version = 1
    needs_calibration = False

    def unavailable(self) -> str | None:
        try:
            import onnxruntime.transformers.float16  # noqa: F401
        except ImportError as exc:
            return f"onnxruntime.transformers.float16 is not importable ({exc}): pip install onnxruntime"
        return None

    def quantize(self, src: Path, dst: Path, params: dict[str, Any],
                 calibration: Calibration | None) -> None:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        try:
            model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True,
                                             op_block_list=params.get("op_block_list"))
            onnx.save(model, str(dst))
        except Exception as exc:  # the converter raises bare ValueError/KeyError on odd graphs
            raise QuantizationError(f"{src.name}: the fp16 converter cannot handle it: {first_line(exc)}") from None
