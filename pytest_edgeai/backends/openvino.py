"""OpenVINO: the CPU here; GPU, NPU and MYRIAD (NCS2, OpenVINO <= 2022.3) where present.

The zoo's ONNX is compiled directly. Shapes are made static per batch: the model is reshaped BEFORE it
is compiled, and each batch keeps its own compiled model (compiled once, inside warm-up). The NPU and
MYRIAD plugins accept static shapes only (OpenVINO NPU device docs: "supports only static shapes";
MYRIAD likewise), so there a dynamic model is never handed to compile_model; the CPU plugin is also
faster on static shapes. ``static_shapes = false`` compiles the model as read (CPU/GPU only). In
THROUGHPUT mode the session drives an AsyncInferQueue (see asynchronous.py), as OpenVINO's
own benchmark_app does; a synchronous loop would leave all but one stream idle.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError, ModelError
from ..keys import Key
from ..registry import distribution_version
from .asynchronous import AsyncProgress, AsyncRun, drive
from .base import Availability, TensorSpec
from .device_options import check_keys, choice, flag, positive_int

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device
    from ..models.model import Model

STATIC_ONLY = ("NPU", "MYRIAD")  # plugins that reject dynamic shapes
HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
PRECISIONS = ("f32", "f16", "bf16")
OPTION_KEYS = (Key("device", "string", None),
               Key("performance_hint", "string", None, choices=HINTS, ignore_case=True),
               Key("num_streams", "integer", None, minimum=1, words=("AUTO",)),
               Key("num_requests", "integer", None, minimum=1),
               Key("inference_precision", "string", None, choices=PRECISIONS, ignore_case=True),
               Key("config", "table", None), Key("static_shapes", "bool", None))
FORMATS = ("onnx", "openvino-ir", "tflite")
MYRIAD_LAST = (2022, 3)  # the last OpenVINO release with the MYRIAD (NCS2) plugin
VIRTUAL = ("AUTO", "HETERO", "MULTI", "BATCH")
# a compiled model's key: its inputs' static shapes, sorted by name
ShapeKey = tuple[tuple[str, tuple[int | str | None, ...]], ...]


def openvino_module() -> Any:
    """The openvino module with Core/AsyncInferQueue at top level (2023.1+) or under .runtime."""
    try:
        import openvino
    except ImportError as exc:
        raise BackendError(f"openvino is not importable ({exc}): pip install 'pytest-edgeai[openvino]'") from None
    if hasattr(openvino, "Core"):
        return openvino
    from openvino import runtime  # OpenVINO 2022.x keeps the API here

    return runtime


def version_tuple(text: str) -> tuple[int, int]:
    """(2022, 3) from '2022.3.0-9052-...'; (0, 0) when unreadable."""
    m = re.match(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def ov_message(exc: BaseException) -> str:
    """OpenVINO's own reason, without its 'Exception from src/...' location lines."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("Exception from ") and not ln.startswith("[ ")]
    return (useful or lines or [type(exc).__name__])[-1]


def device_string(device: Device) -> str:
    value = device.options.get("device", "CPU")
    if not isinstance(value, str) or not value:
        raise ConfigError([f"devices.{device.name}.options.device: {value!r} must be an OpenVINO device "
                           f"name such as CPU, GPU, GPU.1, NPU, MYRIAD, AUTO:GPU,CPU"])
    return value


def targets(dev: str) -> list[str]:
    """The physical devices a device string needs: 'HETERO:GPU,CPU' -> ['GPU', 'CPU']."""
    head, _, rest = dev.partition(":")
    if head.upper() in VIRTUAL:
        return [t for t in rest.split(",") if t]
    return [dev]


def compile_config(device: Device) -> dict[str, Any]:
    """OpenVINO properties from the device's options (validated here; the runtime checks values)."""
    check_keys(device, OPTION_KEYS, "openvino")
    config: dict[str, Any] = {"PERFORMANCE_HINT": choice(device, "performance_hint", "LATENCY", HINTS)}
    streams = device.options.get("num_streams")
    if streams is not None:
        if not (streams == "AUTO" or (isinstance(streams, int) and not isinstance(streams, bool) and streams >= 1)):
            raise ConfigError([f"devices.{device.name}.options.num_streams: {streams!r} must be a whole "
                               f"number >= 1 or \"AUTO\""])
        config["NUM_STREAMS"] = str(streams)
    if "inference_precision" in device.options:
        config["INFERENCE_PRECISION_HINT"] = choice(device, "inference_precision", "f32", PRECISIONS)
    raw = device.options.get("config", {})
    if not isinstance(raw, dict):
        raise ConfigError([f"devices.{device.name}.options.config: must be a table of OpenVINO properties"])
    config.update({str(k): v if isinstance(v, (int, float, bool)) else str(v) for k, v in raw.items()})
    return config


class OpenVINOBackend:
    """Compiles models with ov.Core for the configured OpenVINO device."""

    name = "openvino"
    OPTIONS = OPTION_KEYS

    def probe(self, device: Device) -> Availability:
        try:
            ov = openvino_module()
            dev = device_string(device)
            check_keys(device, OPTION_KEYS, "openvino")
        except (BackendError, ConfigError) as exc:
            return Availability(False, str(exc), runtime=self.name)
        version = distribution_version("openvino") or ov.get_version()
        if any(t.upper().startswith("MYRIAD") for t in targets(dev)) and version_tuple(version) > MYRIAD_LAST:
            return Availability(False, f"MYRIAD (NCS2) needs OpenVINO 2022.3 or older; this is {version}: "
                                       f"pip install 'pytest-edgeai[ncs2]' in a Python 3.10 environment of its own",
                                runtime=self.name, runtime_version=version)
        available = list(ov.Core().available_devices)
        missing = [t for t in targets(dev)
                   if not any(a == t or a.split(".")[0] == t for a in available)]
        if missing:
            return Availability(False, f"OpenVINO {version} sees no {', '.join(missing)} (available: "
                                       f"{', '.join(available) or 'none'}): check the driver and that the device "
                                       f"is plugged in and not held by another process",
                                runtime=self.name, runtime_version=version)
        return Availability(True, runtime=self.name, runtime_version=version,
                            details={"available_devices": available})

    def refuses(self, model: Model, device: Device) -> str | None:
        return None if model.format in FORMATS else f"OpenVINO reads {', '.join(FORMATS)} models, not {model.format}"

    def load(self, model: Model, device: Device) -> OpenVINOSession:
        ov = openvino_module()
        dev = device_string(device)
        config = compile_config(device)
        nireq = positive_int(device, "num_requests")
        if model.format not in FORMATS:
            raise ModelError(f"{model.path}: OpenVINO reads {', '.join(FORMATS)} models, not {model.format}")
        core = ov.Core()
        try:
            ov_model = core.read_model(str(model.path))
        except Exception as exc:  # OpenVINO raises RuntimeError with its own location lines
            raise ModelError(f"{model.path}: OpenVINO cannot read it: {ov_message(exc)}") from None
        static_only = any(t.upper().split(".")[0] in STATIC_ONLY for t in targets(dev))
        static = flag(device, "static_shapes", True)
        if static_only and not static:
            raise ConfigError([f"devices.{device.name}.options.static_shapes: {dev} accepts static shapes only; "
                               f"remove static_shapes = false"])
        session = OpenVINOSession(ov, core, ov_model, dev, config, nireq, str(model.path), static)
        session.compile_for(None)  # fail now, not in the first timed call, on a rejected option
        return session


class OpenVINOSession:
    """Compiled models, one per input shape (reshaped before compiling); sync ``run`` and pooled ``run_async``."""

    def __init__(self, ov: Any, core: Any, ov_model: Any, dev: str, config: dict[str, Any], nireq: int | None,
                 path: str, static: bool = True):
        self._ov, self._core, self._model = ov, core, ov_model
        self._dev, self._config, self._nireq, self._path, self._static = dev, config, nireq, path, static
        self._compiled: dict[ShapeKey | None, Any] = {}
        self._requests: dict[ShapeKey | None, Any] = {}
        self._current: ShapeKey | None = None
        self.inputs = [_spec(p) for p in ov_model.inputs]
        self.outputs = [_spec(p) for p in ov_model.outputs]

    def _shapes(self, feeds: dict[str, np.ndarray] | None) -> dict[str, list[int | str | None]] | None:
        """The static shapes to compile for: the feeds', or (before any feed) batch 1; None = as read."""
        if not self._static:
            return None
        if feeds is not None:
            return {name: list(arr.shape) for name, arr in feeds.items()}
        if all(None not in s.shape for s in self.inputs):
            return None  # already static
        return {s.name: [1 if d is None else d for d in s.shape] for s in self.inputs}

    def compile_for(self, feeds: dict[str, np.ndarray] | None) -> Any:
        """The compiled model for these input shapes; reshaped and compiled the first time they are seen."""
        if feeds is None and self._compiled:
            return self._compiled[self._current]
        shapes = self._shapes(feeds)
        key = None if shapes is None else tuple(sorted((k, tuple(v)) for k, v in shapes.items()))
        if key not in self._compiled:
            model = self._model
            if shapes is not None:
                model = self._model.clone()
                try:
                    model.reshape(shapes)
                except Exception as exc:
                    raise BackendError(f"{self._path}: OpenVINO cannot reshape it to {shapes}: "
                                       f"{ov_message(exc)}") from None
            try:
                self._compiled[key] = self._core.compile_model(model, self._dev, self._config)
            except Exception as exc:
                raise BackendError(f"{self._path}: OpenVINO cannot compile it for {self._dev} with "
                                   f"{self._config} (shapes {shapes or 'as read'}): {ov_message(exc)}") from None
            self._requests[key] = self._compiled[key].create_infer_request()
        self._current = key
        return self._compiled[key]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        compiled = self.compile_for(feeds)
        results = self._requests[self._current].infer(feeds)  # synchronous: outputs are on the host after it
        return [results[out] for out in compiled.outputs]

    def prefers_async(self) -> bool:
        return bool(self._config["PERFORMANCE_HINT"] != "LATENCY")

    def requests(self) -> int:
        """In-flight requests: num_requests if set, else what the compiled model says is optimal."""
        return self._nireq or int(self.compile_for(None).get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    def run_async(self, feeds: dict[str, np.ndarray], min_count: int, min_duration_s: float,
                  progress: AsyncProgress | None = None) -> AsyncRun:
        compiled = self.compile_for(feeds)
        return drive(_InferQueue(self._ov, compiled, self.requests(), feeds), min_count, min_duration_s, progress)

    def settings(self) -> dict[str, Any]:
        compiled = self.compile_for(None)

        def prop(key: str) -> Any:
            try:
                value = compiled.get_property(key)
            except Exception:  # a property this device's plugin does not report
                return None
            if hasattr(value, "to_string"):  # an ov.Type such as bf16
                return value.to_string()
            return value if isinstance(value, (int, float, bool, str)) else str(value).rpartition(".")[2]

        return {
            "device": self._dev,
            "full_device_name": _full_name(self._core, self._dev),
            "performance_hint": prop("PERFORMANCE_HINT"),
            "num_streams": prop("NUM_STREAMS"),
            "num_requests": self.requests(),
            "optimal_num_requests": prop("OPTIMAL_NUMBER_OF_INFER_REQUESTS"),
            "inference_precision": prop("INFERENCE_PRECISION_HINT"),
            "inference_num_threads": prop("INFERENCE_NUM_THREADS"),
            "asynchronous": self.prefers_async(),
            "requested_config": dict(self._config),
            "openvino_version": distribution_version("openvino") or self._ov.get_version(),
            "static_shapes": self._static,
            "compiled_shapes": [dict(k) if k else "as read" for k in self._compiled],
        }

    def close(self) -> None:
        self._compiled.clear()
        self._requests.clear()


class _InferQueue:
    """OpenVINO's AsyncInferQueue as a RequestQueue, inputs set once on every request."""

    def __init__(self, ov: Any, compiled: Any, size: int, feeds: dict[str, np.ndarray]):
        self.size = size
        self._queue = ov.AsyncInferQueue(compiled, size)
        for request in self._queue:
            for name, arr in feeds.items():
                request.set_tensor(name, ov.Tensor(arr))

    def set_callback(self, callback: Callable[[Any, str | None], None]) -> None:
        self._queue.set_callback(lambda _request, userdata: callback(userdata, None))

    def start(self, userdata: Any) -> None:
        self._queue.start_async(None, userdata)

    def wait_idle(self) -> None:
        self._queue.get_idle_request_id()

    def wait_all(self) -> None:
        try:
            self._queue.wait_all()
        except Exception as exc:
            raise BackendError(f"OpenVINO asynchronous inference failed: {ov_message(exc)}") from None


def _spec(port: Any) -> TensorSpec:
    shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
    return TensorSpec(port.get_any_name(), shape, port.get_element_type().to_dtype().name)


def _full_name(core: Any, dev: str) -> str | None:
    try:
        return str(core.get_property(targets(dev)[0], "FULL_DEVICE_NAME"))
    except Exception:  # virtual devices and old plugins may not report it
        return None
