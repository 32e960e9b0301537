"""TensorRT: engines built from ONNX, cached per (model, TensorRT version, GPU), timed in parts.

The engine is built with an explicit batch and one optimisation profile covering the batch
sweep (min/opt/max, configurable), fp16/int8 from the device's options, and cached under a
file lock keyed by the model's bytes, the build options, the TensorRT version and the GPU's
name and compute capability (an engine is only valid there). Device buffers and the stream
come from cuda-python; every run is timed with CUDA events as well as the host clock, and
host-to-device, compute and device-to-host are kept apart (``last_timings``), as trtexec does.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import filecache
from ..errors import BackendError, ConfigError, ModelError
from ..filecache import build_once
from . import cuda, jetson
from .base import Availability, TensorSpec
from .device_options import check_keys, flag, positive_int, require

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device
    from ..models.model import Model

OPTION_KEYS = ("fp16", "int8", "batch_min", "batch_opt", "batch_max", "workspace_mb", "device_id", "cache_dir")
CALIBRATION_SAMPLES = 16


def _trt():
    return require("tensorrt", "pip install 'pytest-edgeai[tensorrt]' (or use the TensorRT that JetPack installs)")


def build_options(device: Device) -> dict[str, Any]:
    check_keys(device, OPTION_KEYS, "tensorrt")
    lo = positive_int(device, "batch_min", 1)
    hi = positive_int(device, "batch_max", 8)
    opt = positive_int(device, "batch_opt", hi)
    if not lo <= opt <= hi:
        raise ConfigError([f"devices.{device.name}.options: batch_min {lo} <= batch_opt {opt} <= batch_max {hi} "
                           f"must hold"])
    return {"fp16": flag(device, "fp16"), "int8": flag(device, "int8"), "batch": [lo, opt, hi],
            "workspace_mb": positive_int(device, "workspace_mb", 1024), "device_id": int(device.options.get("device_id", 0))}


class TensorRTBackend:
    """Builds (or reuses) a TensorRT engine for an ONNX model on a CUDA GPU."""

    name = "tensorrt"

    def probe(self, device: Device) -> Availability:
        try:
            opts = build_options(device)
            trt = _trt()
            rt = cuda.cudart()
            count = cuda.call(rt, "cudaGetDeviceCount")
        except (BackendError, ConfigError) as exc:
            return Availability(False, str(exc), runtime=self.name)
        if opts["device_id"] >= count:
            return Availability(False, f"TensorRT {trt.__version__}: CUDA sees {count} GPU(s), not device "
                                       f"{opts['device_id']}: check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES",
                                runtime=self.name, runtime_version=trt.__version__)
        details = {**cuda.device_identity(rt, opts["device_id"]), **cuda.runtime_versions(rt)}
        if device.kind == "jetson":
            details.update(jetson.state())
        return Availability(True, runtime=self.name, runtime_version=trt.__version__, details=details)

    def load(self, model: Model, device: Device) -> TensorRTSession:
        opts = build_options(device)
        trt = _trt()
        rt = cuda.cudart()
        cuda.call(rt, "cudaSetDevice", opts["device_id"])
        identity = cuda.device_identity(rt, opts["device_id"])
        logger = trt.Logger(trt.Logger.WARNING)
        if model.format == "tensorrt":
            plan, path = model.path.read_bytes(), model.path
        elif model.format == "onnx":
            path = engine_path(model, opts, trt.__version__, identity, device)
            plan = build_once(path, lambda tmp: tmp.write_bytes(build_engine(trt, logger, model, opts))).read_bytes()
        else:
            raise ModelError(f"{model.path}: TensorRT builds engines from .onnx or loads .engine/.plan, not {model.format}")
        engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
        if engine is None:
            raise BackendError(f"{path}: TensorRT {trt.__version__} cannot deserialise this engine (built by another "
                               f"TensorRT version or for another GPU?): delete it to rebuild")
        info = {"tensorrt_version": trt.__version__, **identity, **cuda.runtime_versions(rt), "engine": str(path),
                "fp16": opts["fp16"], "int8": opts["int8"], "batch_profile": opts["batch"],
                "workspace_mb": opts["workspace_mb"]}
        if opts["int8"]:
            info["int8_calibration"] = f"{CALIBRATION_SAMPLES} seeded standard-normal batches (entropy calibrator 2)"
        if device.kind == "jetson":
            info.update(jetson.state())
        return TensorRTSession(trt, rt, engine, info)


def engine_path(model: Model, opts: dict[str, Any], version: str, identity: dict[str, Any], device: Device) -> Path:
    key = json.dumps([model.sha256(), {k: v for k, v in opts.items() if k != "device_id"}, version,
                      identity["gpu"], identity["compute_capability"]], sort_keys=True)
    cache = Path(device.options.get("cache_dir") or filecache.cache_dir("tensorrt"))
    return cache / f"{model.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.engine"


def build_engine(trt, logger, model: Model, opts: dict[str, Any]) -> bytes:
    builder = trt.Builder(logger)
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)  # implicit in TensorRT 10
    network = builder.create_network(1 << int(explicit) if explicit is not None else 0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{model.path}: TensorRT's ONNX parser rejects it: {errors or 'no reason given'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts["workspace_mb"] << 20)
    if opts["fp16"]:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    lo, opt, hi = opts["batch"]
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]
        if tensor.shape[0] == -1:
            profile.set_shape(tensor.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)
    if opts["int8"]:
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, network, opt)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendError(f"{model.path}: TensorRT could not build an engine (options {opts}); its log above "
                           f"says why (often: the workspace is too small, or a layer lacks fp16/int8 support)")
    return bytes(plan)


def _calibrator(trt, network, batch: int):
    """An entropy calibrator fed seeded random batches: recorded as such, not real data."""
    import numpy as np

    rt = cuda.cudart()
    inputs = [network.get_input(i) for i in range(network.num_inputs)]

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(0)
            self.left = CALIBRATION_SAMPLES
            self.buffers = {}

        def get_batch_size(self):
            return batch

        def get_batch(self, names):
            if self.left == 0:
                return None
            self.left -= 1
            ptrs = []
            for t in inputs:
                host = self.rng.standard_normal((batch, *tuple(t.shape)[1:])).astype(np.float32)
                if t.name not in self.buffers:
                    self.buffers[t.name] = cuda.call(rt, "cudaMalloc", host.nbytes)
                cuda.call(rt, "cudaMemcpy", self.buffers[t.name], host.ctypes.data, host.nbytes,
                          rt.cudaMemcpyKind.cudaMemcpyHostToDevice)
                ptrs.append(int(self.buffers[t.name]))
            return ptrs

        def read_calibration_cache(self):
            return None

        def write_calibration_cache(self, cache):
            return None

    return Calibrator()


class TensorRTSession:
    """An execution context with device buffers sized for the profile's largest batch."""

    def __init__(self, trt, rt, engine, info: dict[str, Any]):
        import numpy as np

        self._trt, self._rt, self._engine, self._info = trt, rt, engine, info
        self._context = engine.create_execution_context()
        self._stream = cuda.call(rt, "cudaStreamCreate")
        self._events = [cuda.call(rt, "cudaEventCreate") for _ in range(4)]
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        dtype = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        shape = {n: tuple(engine.get_tensor_shape(n)) for n in names}
        self.inputs = [TensorSpec(n, _free(shape[n]), dtype[n].name) for n in names if is_input[n]]
        self.outputs = [TensorSpec(n, _free(shape[n]), dtype[n].name) for n in names if not is_input[n]]
        self._dtype = dtype
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._timings: dict[str, float] = {}

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                cuda.call(self._rt, "cudaFree", ptr)
            ptr = cuda.call(self._rt, "cudaMalloc", nbytes)
            self._buffers[name] = (ptr, nbytes)
            self._context.set_tensor_address(name, int(ptr))
        return ptr

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        rt, ctx, stream = self._rt, self._context, self._stream
        h2d, d2h = rt.cudaMemcpyKind.cudaMemcpyHostToDevice, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        e0, e1, e2, e3 = self._events
        t0 = time.perf_counter_ns()
        cuda.call(rt, "cudaEventRecord", e0, stream)
        for spec in self.inputs:
            host = np.ascontiguousarray(feeds[spec.name], dtype=self._dtype[spec.name])
            if not ctx.set_input_shape(spec.name, host.shape):
                raise BackendError(f"TensorRT: input '{spec.name}' shape {host.shape} is outside the engine's "
                                   f"profile (batch {self._info.get('batch_profile')}): widen batch_min/batch_max")
            ptr = self._buffer(spec.name, host.nbytes)
            cuda.call(rt, "cudaMemcpyAsync", ptr, host.ctypes.data, host.nbytes, h2d, stream)
        cuda.call(rt, "cudaEventRecord", e1, stream)
        outputs = []
        for spec in self.outputs:
            out = np.empty(tuple(ctx.get_tensor_shape(spec.name)), dtype=self._dtype[spec.name])
            self._buffer(spec.name, out.nbytes)
            outputs.append(out)
        if not ctx.execute_async_v3(stream):
            raise BackendError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        cuda.call(rt, "cudaEventRecord", e2, stream)
        for spec, out in zip(self.outputs, outputs):
            cuda.call(rt, "cudaMemcpyAsync", out.ctypes.data, self._buffers[spec.name][0], out.nbytes, d2h, stream)
        cuda.call(rt, "cudaEventRecord", e3, stream)
        cuda.call(rt, "cudaEventSynchronize", e3)  # the outputs are on the host from here on
        host_ms = (time.perf_counter_ns() - t0) / 1e6
        self._timings = {"host_ms": host_ms,
                         "h2d_ms": cuda.call(rt, "cudaEventElapsedTime", e0, e1),
                         "compute_ms": cuda.call(rt, "cudaEventElapsedTime", e1, e2),
                         "d2h_ms": cuda.call(rt, "cudaEventElapsedTime", e2, e3)}
        return outputs

    def last_timings(self) -> dict[str, float]:
        """The last run split as trtexec splits it: H2D, GPU compute, D2H (CUDA events) and host wall."""
        return dict(self._timings)

    def settings(self) -> dict[str, Any]:
        return {**self._info, "timing": "CUDA events (h2d, compute, d2h) and host perf_counter per run"}

    def close(self) -> None:
        for ptr, _ in self._buffers.values():
            cuda.call(self._rt, "cudaFree", ptr)
        self._buffers.clear()
        for ev in self._events:
            cuda.call(self._rt, "cudaEventDestroy", ev)
        cuda.call(self._rt, "cudaStreamDestroy", self._stream)
        self._events = []
        self._context = self._engine = None


def _free(shape: tuple[int, ...]) -> tuple[int | None, ...]:
    return tuple(None if d < 0 else d for d in shape)
