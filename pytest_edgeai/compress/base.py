"""The quantiser contract, its errors, and the registry of methods.

A quantiser turns one ONNX file into another. Each method is a small module behind the
:class:`Quantizer` protocol; a method whose package is missing says why in ``unavailable()``
instead of failing, so a suite skips it with the reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import QuantizationError, did_you_mean

Calibration = Sequence[dict[str, np.ndarray]]

# name -> "module:Class"; imported only when a method is used.
METHODS: dict[str, str] = {
    "fp16": "pytest_edgeai.compress.fp16:Fp16Quantizer",
    "int8_dynamic": "pytest_edgeai.compress.int8_dynamic:DynamicInt8Quantizer",
    "int8_static": "pytest_edgeai.compress.int8_static:StaticInt8Quantizer",
    "nncf_int8": "pytest_edgeai.compress.nncf_int8:NncfInt8Quantizer",
}


class Quantizer(Protocol):
    """Writes a quantised copy of an ONNX model."""

    name: str
    version: int  # bump when the output for the same input changes: it invalidates caches
    needs_calibration: bool

    def unavailable(self) -> str | None:
        """None when usable here, else why not (which package to install)."""
        ...

    def quantize(self, src: Path, dst: Path, params: dict[str, Any],
                 calibration: Calibration | None) -> None: ...


def get_method(name: str) -> Quantizer:
    """The quantiser registered under ``name``; QuantizationError with a did-you-mean otherwise."""
    if name not in METHODS:
        raise QuantizationError(f"unknown quantisation method '{name}'{did_you_mean(name, METHODS)}; "
                                f"known: {', '.join(METHODS)}")
    module_name, _, attr = METHODS[name].partition(":")
    quantizer: Quantizer = getattr(importlib.import_module(module_name), attr)()
    return quantizer


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
