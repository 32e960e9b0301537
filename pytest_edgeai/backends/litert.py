"""LiteRT (TFLite): the CPU interpreter here; the EdgeTPU through the libedgetpu delegate.

On the CPU the interpreter comes from ai_edge_litert, else tflite_runtime, else tensorflow.lite, and a
new batch resizes the input. The EdgeTPU needs static shapes end to end (the compiler rejects dynamic
tensors, and a compiled model cannot be resized): each batch is converted with that fixed batch
(full-integer int8), compiled with edgetpu_compiler, and loaded as its own interpreter; the compiler's
report (operations on the TPU out of the total, parameter memory) is kept in the settings. The
delegate runs inside tflite_runtime of the TensorFlow version libedgetpu was built for (edgetpu.py).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError, ModelError
from ..keys import Key
from ..registry import distribution_version
from . import edgetpu
from .base import Availability, TensorSpec
from .device_options import check_keys, choice, flag, positive_int
from .tflite_convert import to_tflite

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device
    from ..models.model import Model

OPTION_KEYS = (Key("num_threads", "integer", None, minimum=1), Key("delegate", "string", None),
               Key("delegate_options", "table", None), Key("device", "string", None),
               Key("quantization", "string", None, choices=("fp32", "int8"), ignore_case=True),
               Key("compile", "bool", None), Key("co_compile", "list", None), Key("cache_dir", "string", None),
               Key("sysfs_root", "string", None))
EDGETPU_RUNTIMES = (("tflite_runtime.interpreter", ("tflite-runtime",)),)  # the ABI libedgetpu is built for
RUNTIMES = (("ai_edge_litert.interpreter", ("ai-edge-litert",)),
            ("tflite_runtime.interpreter", ("tflite-runtime",)),
            ("tensorflow.lite", ("tensorflow", "tensorflow-cpu")))


def interpreter_module(
    runtimes: tuple[tuple[str, tuple[str, ...]], ...] = RUNTIMES,
) -> tuple[Any, Any, str, str | None]:
    """(Interpreter class, load_delegate, module name, version) of the first runtime found."""
    for name, dists in runtimes:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        loader = (getattr(mod, "load_delegate", None)
                  or getattr(getattr(mod, "experimental", None), "load_delegate", None))
        return mod.Interpreter, loader, name, distribution_version(*dists)
    if runtimes == EDGETPU_RUNTIMES:
        raise BackendError("the Edge TPU delegate runs inside tflite_runtime (the ABI libedgetpu is built for), "
                           "which is not importable: pip install the tflite-runtime matching your libedgetpu "
                           "(2.5.x for Coral's libedgetpu 16.0)")
    raise BackendError("no TFLite interpreter is importable: pip install 'pytest-edgeai[litert]' "
                       "(ai-edge-litert), or tflite-runtime, or tensorflow")


def is_edgetpu(device: Device) -> bool:
    return device.options.get("delegate") == "edgetpu" or device.kind == "edgetpu"


def _tpus(device: Device) -> list[edgetpu.TPU]:
    return edgetpu.list_tpus(device.options.get("sysfs_root", "/sys"))


def _edgetpu_interpreter() -> tuple[Any, Any, str, str | None]:
    """The interpreter that can host libedgetpu: Coral's pycoral (which brings tflite_runtime), else tflite_runtime."""
    return interpreter_module(EDGETPU_RUNTIMES)


def edgetpu_problem(device: Device) -> str | None:
    """What this host lacks to run the EdgeTPU device, one line with the fix; None when nothing."""
    try:
        _, _, module, version = _edgetpu_interpreter()
    except BackendError as exc:
        return str(exc)
    package = edgetpu.runtime_package()
    if package is None and edgetpu.find_runtime() is None:
        return f"{edgetpu.library_name()} not found: {edgetpu.INSTALL_RUNTIME}"
    problem = edgetpu.pairing_problem(module, version, package)
    if problem:
        return problem
    tpus = _tpus(device)
    wanted = device.options.get("device", "usb:0")
    if not any(t.name == wanted or (wanted in ("usb", "pci", "") and t.type == wanted) for t in tpus):
        return (f"EdgeTPU {wanted} is not attached (found: {', '.join(t.name for t in tpus) or 'none'}): plug in "
                f"the Coral accelerator, or check the apex driver for a PCIe one")
    return None


class LiteRTBackend:
    """Loads .tflite models (converting ONNX) into a LiteRT interpreter, with an optional delegate."""

    name = "litert"
    OPTIONS = OPTION_KEYS

    def probe(self, device: Device) -> Availability:
        tpu = is_edgetpu(device)
        try:
            check_keys(device, OPTION_KEYS, "litert")
            _, _, module, version = _edgetpu_interpreter() if tpu else interpreter_module()
        except (BackendError, ConfigError) as exc:
            return Availability(False, str(exc), runtime=self.name)
        details: dict[str, Any] = {"interpreter": module}
        if tpu:
            details["edgetpus"] = edgetpu.describe(_tpus(device))
            details["libedgetpu_package"] = " ".join(edgetpu.runtime_package() or ()) or None
            problem = edgetpu_problem(device)
            if problem:
                return Availability(False, problem, runtime=self.name, runtime_version=version, details=details)
        return Availability(True, runtime=self.name, runtime_version=version, details=details)

    def refuses(self, model: Model, device: Device) -> str | None:
        """LiteRT runs .tflite; ONNX only through the converter (tensorflow + onnx2tf), looked up, not imported."""
        if model.format == "tflite":
            return None
        if model.format != "onnx":
            return f"LiteRT runs .tflite models (ONNX through a converter), not {model.format}"
        missing = [m for m in ("tensorflow", "onnx2tf") if importlib.util.find_spec(m) is None]
        if missing:
            return (f"LiteRT runs .tflite; converting this ONNX model needs {' and '.join(missing)}, not installed: "
                    "pip install 'pytest-edgeai[tflite-convert]', or give a .tflite model")
        return None

    def load(self, model: Model, device: Device) -> LiteRTSession:
        return self.load_together([model], device)[0]

    def load_together(self, models: list[Model], device: Device) -> list[LiteRTSession]:
        """One session per model; on the EdgeTPU the models are co-compiled in one compiler run, so they
        share the parameter cache (Coral's co-compilation), batch by batch."""
        check_keys(device, OPTION_KEYS, "litert")
        threads = positive_int(device, "num_threads")
        if not is_edgetpu(device):
            return [self._cpu_session(m, device, threads) for m in models]
        group = _EdgeTPUGroup(models, device, threads)
        return [LiteRTSession(functools.partial(group.interpreter, i), group.info(i),
                              functools.partial(group.details, i)) for i in range(len(models))]

    def _cpu_session(self, model: Model, device: Device, threads: int | None) -> LiteRTSession:
        interpreter_cls, loader, module, version = interpreter_module()
        quantization = choice(device, "quantization", "fp32", ("fp32", "int8"))
        converted = to_tflite(model, quantization, _cache_dir(device))
        info: dict[str, Any] = {"interpreter": module, "runtime_version": version, "num_threads": threads,
                                "quantization": converted.quantization, "calibration": converted.calibration,
                                "converter": converted.tool, "model_file": str(converted.path)}
        delegates = []
        if "delegate" in device.options:
            delegates.append(_external_delegate(device, loader))
            info["delegate"] = device.options["delegate"]
        interpreter = _interpreter(interpreter_cls, converted.path, threads, delegates)
        return LiteRTSession(lambda batch: interpreter, info)


def edgetpu_parameter_bytes(model: Model, device: Device) -> tuple[int, str]:
    """What the EdgeTPU's parameter cache must hold for ``model`` at batch 1, and where the figure comes
    from: the compiler's report on the compiled int8 model (on-chip + off-chip parameter memory), else
    the int8 .tflite's size (no compiler here; weights plus graph, so a slight over-estimate)."""
    converted = to_tflite(model, "int8", _cache_dir(device), batch=1)
    try:
        [compiled] = edgetpu.compile_for_edgetpu([converted.path], _cache_dir(device) or converted.path.parent)
    except BackendError as exc:
        size = converted.path.stat().st_size
        return size, f"int8 .tflite size {size} B (not compiled: {exc})"
    report = compiled.report
    if "on_chip_parameter_bytes" in report:
        total = report["on_chip_parameter_bytes"] + report.get("off_chip_parameter_bytes", 0)
        return total, (f"edgetpu_compiler's parameter memory {total} B (on-chip "
                       f"{report['on_chip_parameter_bytes']} B + "
                       f"off-chip {report.get('off_chip_parameter_bytes', 0)} B)")
    size = compiled.path.stat().st_size
    return size, f"compiled int8 model size {size} B (the compiler printed no parameter memory)"


def _cache_dir(device: Device) -> Path | None:
    return Path(device.options["cache_dir"]) if "cache_dir" in device.options else None


def _interpreter(cls: Any, path: Path, threads: int | None, delegates: list[Any]) -> Any:
    try:
        interpreter = cls(model_path=str(path), num_threads=threads, experimental_delegates=delegates)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "EdgeTpuDelegateForCustomOp" in str(exc) or "edgetpu-custom-op" in str(exc):
            raise BackendError(f"{path}: the Edge TPU delegate cannot run in this interpreter ({text}): "
                               f"libedgetpu and tflite_runtime must come from the same TensorFlow version") from None
        raise ModelError(f"{path}: LiteRT cannot load it: {text}") from None
    return interpreter


class _EdgeTPUGroup:
    """Models that share a TPU: converted with a fixed batch, co-compiled per batch, loaded with the delegate."""

    def __init__(self, models: list[Model], device: Device, threads: int | None):
        self.models, self.device, self.threads = models, device, threads
        self.cache = _cache_dir(device)
        self.compiled: dict[int, list[tuple[Path, dict[str, Any]]]] = {}
        self.converted: dict[int, list[Any]] = {}
        choice(device, "quantization", "int8", ("int8",))  # the EdgeTPU runs full-integer models only

    def _files(self, batch: int) -> list[tuple[Path, dict[str, Any]]]:
        if batch not in self.compiled:
            given = [m.path for m in self.models if m.format == "tflite" and m.path.stem.endswith("_edgetpu")]
            if given and len(given) == len(self.models):
                self.compiled[batch] = [(p, {"edgetpu_compiled": "as given"}) for p in given]
                return self.compiled[batch]
            converted = [to_tflite(m, "int8", self.cache, batch=batch) for m in self.models]
            self.converted[batch] = converted
            if not flag(self.device, "compile", True):
                self.compiled[batch] = [(c.path, {"edgetpu_compiled": "no (runs on the CPU)"}) for c in converted]
                return self.compiled[batch]
            others = [Path(p) for p in self.device.options.get("co_compile", [])]
            paths = [c.path for c in converted]
            results = edgetpu.compile_for_edgetpu([*paths, *others], self.cache or paths[0].parent)[:len(paths)]
            label = "edgetpu_compiler" + (f", co-compiled with {len(paths) + len(others) - 1} model(s)"
                                          if len(paths) + len(others) > 1 else "")
            self.compiled[batch] = [(r.path, {"edgetpu_compiled": label, "edgetpu_compiler": r.report})
                                    for r in results]
        return self.compiled[batch]

    def interpreter(self, index: int, batch: int) -> Any:
        interpreter_cls, loader, _, _ = _edgetpu_interpreter()
        path, _ = self._files(batch)[index]
        delegate = _edgetpu_delegate(self.device, loader)
        return _interpreter(interpreter_cls, path, self.threads, [delegate])

    def info(self, index: int) -> dict[str, Any]:
        """What is known before the first run; each batch's compile report joins it when it is loaded."""
        _, _, module, version = _edgetpu_interpreter()
        return {"interpreter": module, "runtime_version": version, "num_threads": self.threads,
                "quantization": "int8", "delegate": "edgetpu",
                "edgetpu_device": self.device.options.get("device", "usb:0"),
                "libedgetpu_package": " ".join(edgetpu.runtime_package() or ()) or None,
                "shapes": "static: one converted, compiled and loaded model per batch"}

    def details(self, index: int, batch: int) -> dict[str, Any]:
        """The loaded batch's model file, conversion and the compiler's report (ops on the TPU / total)."""
        path, compiled = self._files(batch)[index]
        out: dict[str, Any] = {"batch": batch, "model_file": str(path), **compiled}
        if batch in self.converted:
            c = self.converted[batch][index]
            out.update(calibration=c.calibration, converter=c.tool)
        out["library"] = edgetpu.loaded_library()
        out["library_variant"] = edgetpu.library_variant(out["library"])
        return out

def _edgetpu_delegate(device: Device, loader: Any) -> Any:
    coral = edgetpu.coral_edgetpu_module()
    if coral is not None:
        loader = lambda _library, options: coral.load_edgetpu_delegate(options)  # noqa: E731
    if loader is None:
        raise BackendError("this TFLite runtime has no load_delegate: install ai-edge-litert or tflite-runtime")
    return edgetpu.load_delegate(loader, device.options.get("device", "usb:0"), _tpus(device))


def _external_delegate(device: Device, loader: Any) -> Any:
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
    """A TFLite interpreter. On the CPU a new batch resizes the inputs; with static shapes (the EdgeTPU)
    a new batch closes the interpreter and opens the one compiled for that batch."""

    def __init__(self, open_for: Callable[[int], Any], info: dict[str, Any],
                 details: Callable[[int], dict[str, Any]] | None = None):
        self._open_for, self._info, self._details = open_for, info, details
        self._batch = 1
        self._it = open_for(1)
        self._refresh()

    def _refresh(self) -> None:
        self._in = self._it.get_input_details()
        self._out = self._it.get_output_details()
        self.inputs = [_spec(d) for d in self._in]
        self.outputs = [_spec(d) for d in self._out]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if any(tuple(feeds[d["name"]].shape) != tuple(d["shape"]) for d in self._in):
            if self._details is not None:  # static: the compiled model for this batch, never a resize
                self._it = None  # release the TPU's parameter cache before the next model takes it
                self._batch = int(next(iter(feeds.values())).shape[0])
                self._it = self._open_for(self._batch)
            else:
                for d in self._in:
                    self._it.resize_tensor_input(d["index"], list(feeds[d["name"]].shape))
                self._it.allocate_tensors()
            self._refresh()
        it = self._it
        for d in self._in:
            it.set_tensor(d["index"], feeds[d["name"]])
        it.invoke()  # synchronous, delegates included: outputs are on the host when it returns
        return [it.get_tensor(d["index"]) for d in self._out]

    def quantization(self) -> dict[str, tuple[float, int]]:
        """(scale, zero point) of each quantised input and output, to map real values in and out."""
        return {d["name"]: tuple(d["quantization"]) for d in (*self._in, *self._out) if d["quantization"][0]}

    def settings(self) -> dict[str, Any]:
        return {**self._info, **(self._details(self._batch) if self._details else {})}

    def close(self) -> None:
        self._it = None


def _spec(detail: dict[str, Any]) -> TensorSpec:
    """The batch dim is left free: the interpreter resizes it, or the batch's own model is opened."""
    shape = tuple(int(d) for d in detail["shape"])
    dtype = detail["dtype"]
    return TensorSpec(detail["name"], (None, *shape[1:]) if shape else shape,
                      dtype.__name__ if hasattr(dtype, "__name__") else str(dtype))
