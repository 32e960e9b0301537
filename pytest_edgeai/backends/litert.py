"""LiteRT (TFLite): the CPU interpreter here; the EdgeTPU through the libedgetpu delegate.

The interpreter comes from ai_edge_litert, else tflite_runtime, else tensorflow.lite. ONNX
models are converted (tflite_convert.py: fp32, or full-integer int8 for the EdgeTPU) and, for
the EdgeTPU, compiled with edgetpu_compiler when it is on PATH; all results are cached.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError, ModelError
from ..registry import distribution_version
from . import edgetpu
from .base import Availability, TensorSpec
from .device_options import check_keys, choice, flag, positive_int

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device
    from ..models.model import Model

OPTION_KEYS = ("num_threads", "delegate", "delegate_options", "device", "quantization", "compile",
               "co_compile", "cache_dir", "sysfs_root")
RUNTIMES = (("ai_edge_litert.interpreter", ("ai-edge-litert",)),
            ("tflite_runtime.interpreter", ("tflite-runtime",)),
            ("tensorflow.lite", ("tensorflow", "tensorflow-cpu")))


def interpreter_module() -> tuple[Any, Any, str, str | None]:
    """(Interpreter class, load_delegate, module name, version) of the first runtime found."""
    for name, dists in RUNTIMES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        loader = getattr(mod, "load_delegate", None) or getattr(getattr(mod, "experimental", None), "load_delegate", None)
        return mod.Interpreter, loader, name, distribution_version(*dists)
    raise BackendError("no TFLite interpreter is importable: pip install 'pytest-edgeai[litert]' "
                       "(ai-edge-litert), or tflite-runtime, or tensorflow")


def is_edgetpu(device: Device) -> bool:
    return device.options.get("delegate") == "edgetpu" or device.kind == "edgetpu"


def _tpus(device: Device) -> list[edgetpu.TPU]:
    return edgetpu.list_tpus(device.options.get("sysfs_root", "/sys"))


class LiteRTBackend:
    """Loads .tflite models (converting ONNX) into a LiteRT interpreter, with an optional delegate."""

    name = "litert"

    def probe(self, device: Device) -> Availability:
        try:
            check_keys(device, OPTION_KEYS, "litert")
            _, _, module, version = interpreter_module()
        except (BackendError, ConfigError) as exc:
            return Availability(False, str(exc), runtime=self.name)
        details: dict[str, Any] = {"interpreter": module}
        if is_edgetpu(device):
            tpus = _tpus(device)
            wanted = device.options.get("device", "usb:0")
            details["edgetpus"] = edgetpu.describe(tpus)
            if not any(t.name == wanted or (wanted in ("usb", "pci", "") and t.type == wanted) for t in tpus):
                return Availability(False, f"EdgeTPU {wanted} is not attached (found: "
                                           f"{', '.join(t.name for t in tpus) or 'none'}): plug in the Coral "
                                           f"accelerator, or check the apex driver for a PCIe one",
                                    runtime=self.name, runtime_version=version, details=details)
        return Availability(True, runtime=self.name, runtime_version=version, details=details)

    def load(self, model: Model, device: Device) -> LiteRTSession:
        from .tflite_convert import to_tflite

        check_keys(device, OPTION_KEYS, "litert")
        interpreter_cls, loader, module, version = interpreter_module()
        threads = positive_int(device, "num_threads")
        tpu = is_edgetpu(device)
        quantization = choice(device, "quantization", "int8" if tpu else "fp32", ("fp32", "int8"))
        cache_dir = Path(device.options["cache_dir"]) if "cache_dir" in device.options else None
        converted = to_tflite(model, quantization, cache_dir)
        path = converted.path
        delegates: list[Any] = []
        info: dict[str, Any] = {"interpreter": module, "runtime_version": version, "num_threads": threads,
                                "quantization": converted.quantization, "calibration": converted.calibration,
                                "converter": converted.tool, "model_file": str(path)}
        if tpu:
            path, tpu_info = _edgetpu_model(device, path, cache_dir)
            delegates.append(_edgetpu_delegate(device, loader))
            tpu_info["library"] = edgetpu.loaded_library()
            tpu_info["library_variant"] = edgetpu.library_variant(tpu_info["library"])
            info.update(tpu_info, model_file=str(path))
        elif "delegate" in device.options:
            delegates.append(_external_delegate(device, loader))
            info["delegate"] = device.options["delegate"]
        try:
            interpreter = interpreter_cls(model_path=str(path), num_threads=threads, experimental_delegates=delegates)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: LiteRT cannot load it: {str(exc).strip().splitlines()[0]}") from None
        return LiteRTSession(interpreter, info)


def _edgetpu_model(device: Device, path: Path, cache_dir: Path | None) -> tuple[Path, dict[str, Any]]:
    """The *_edgetpu.tflite to load: as given, or compiled (with co-compiled models) when asked."""
    info: dict[str, Any] = {"delegate": "edgetpu", "edgetpu_device": device.options.get("device", "usb:0")}
    if path.stem.endswith("_edgetpu") or not flag(device, "compile", True):
        info["edgetpu_compiled"] = "as given" if path.stem.endswith("_edgetpu") else "no (runs on the CPU)"
        return path, info
    others = [Path(p) for p in device.options.get("co_compile", [])]
    compiled = edgetpu.compile_for_edgetpu([path, *others], cache_dir or path.parent)
    info["edgetpu_compiled"] = "edgetpu_compiler" + (f", co-compiled with {len(others)} model(s)" if others else "")
    return compiled[0], info


def _edgetpu_delegate(device: Device, loader):
    coral = edgetpu.coral_edgetpu_module()
    if coral is not None:
        loader = lambda _library, options: coral.load_edgetpu_delegate(options)  # noqa: E731
    if loader is None:
        raise BackendError("this TFLite runtime has no load_delegate: install ai-edge-litert or tflite-runtime")
    return edgetpu.load_delegate(loader, device.options.get("device", "usb:0"), _tpus(device))


def _external_delegate(device: Device, loader):
    library = device.options["delegate"]
    options = device.options.get("delegate_options", {})
    if not isinstance(options, dict):
        raise ConfigError([f"devices.{device.name}.options.delegate_options: must be a table"])
    try:
        return loader(str(library), {str(k): str(v) for k, v in options.items()})
    except (ValueError, OSError, RuntimeError) as exc:
        raise BackendError(f"devices.{device.name}.options.delegate: cannot load {library}: "
                           f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None


class LiteRTSession:
    """A TFLite interpreter; inputs are resized (and tensors reallocated) when the batch changes."""

    def __init__(self, interpreter, info: dict[str, Any]):
        self._it = interpreter
        self._info = info
        self._refresh()

    def _refresh(self) -> None:
        self._in = self._it.get_input_details()
        self._out = self._it.get_output_details()
        self.inputs = [_spec(d) for d in self._in]
        self.outputs = [_spec(d) for d in self._out]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        it = self._it
        if any(tuple(feeds[d["name"]].shape) != tuple(d["shape"]) for d in self._in):
            for d in self._in:
                it.resize_tensor_input(d["index"], list(feeds[d["name"]].shape))
            it.allocate_tensors()
            self._in = it.get_input_details()
            self._out = it.get_output_details()
        for d in self._in:
            it.set_tensor(d["index"], feeds[d["name"]])
        it.invoke()  # synchronous, delegates included: outputs are on the host when it returns
        return [it.get_tensor(d["index"]) for d in self._out]

    def quantization(self) -> dict[str, tuple[float, int]]:
        """(scale, zero point) of each quantised input and output, to map real values in and out."""
        return {d["name"]: tuple(d["quantization"]) for d in (*self._in, *self._out) if d["quantization"][0]}

    def settings(self) -> dict[str, Any]:
        return dict(self._info)

    def close(self) -> None:
        self._it = None


def _spec(detail: dict[str, Any]) -> TensorSpec:
    """The batch dim is left free: the interpreter resizes it on demand."""
    shape = tuple(int(d) for d in detail["shape"])
    dtype = detail["dtype"]
    return TensorSpec(detail["name"], (None, *shape[1:]) if shape else shape,
                      dtype.__name__ if hasattr(dtype, "__name__") else str(dtype))
