"""TensorRT 8.6, 10 and 11: engines built from ONNX, cached per (model, shapes, precision, TensorRT, GPU),
timed as trtexec times them.

Versions (TensorRT Python API reference and "Migrating from TensorRT 10.x to 11.x"):
- 8.6: the network needs ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``; fp16 and int8 are builder
  flags; int8 without Q/DQ nodes needs a calibrator (``IBuilderConfig.int8_calibrator``).
- 10.x: explicit batch is implied (the flag is deprecated and ignored); the precision flags and the
  calibrator still exist (implicit quantization is deprecated).
- 11.x: ``BuilderFlag.FP16/INT8/BF16/FP8``, ``int8_calibrator`` and ``set_calibration_profile`` are gone;
  every network is strongly typed: the precision is the ONNX model's own. fp16 therefore comes from
  converting the ONNX model to float16 (onnxruntime's converter, inputs and outputs kept float32),
  int8 only from a model with explicit QuantizeLinear/DequantizeLinear nodes.

Shapes: by default each batch gets its own engine built for exactly that batch (min = opt = max, what
``trtexec --shapes`` does), so batch 1 does not run kernels tuned for batch 8; ``shapes = "dynamic"``
builds one engine over batch_min..batch_max with the optimum at batch_opt (default batch_min).

Timing: host buffers are pinned (cudaMallocHost), every query records CUDA events around its
host-to-device copy, its compute and its device-to-host copy, and the per-query statistics of the
timed window go into the record. ``streams = N`` keeps N queries in flight on N streams with one
execution context each (trtexec's --infStreams) for offline throughput; ``cuda_graph = true`` captures
the enqueue in a CUDA graph and launches that (trtexec's --useCudaGraph).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import shutil
import statistics
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import filecache
from ..errors import BackendError, ConfigError, ModelError
from ..filecache import build_once
from ..keys import Key
from . import cuda, jetson
from .asynchronous import AsyncProgress, AsyncRun, OldestFirstQueue, drive
from .base import Availability, TensorSpec
from .device_options import check_keys, choice, flag, positive_int, require

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device
    from ..models.model import Model

SHAPES = ("static", "dynamic")
OPTION_KEYS = (Key("fp16", "bool", None), Key("int8", "bool", None),
               Key("shapes", "string", None, choices=SHAPES, ignore_case=True),
               Key("batch_min", "integer", None, minimum=1), Key("batch_opt", "integer", None, minimum=1),
               Key("batch_max", "integer", None, minimum=1), Key("workspace_mb", "integer", None, minimum=1),
               Key("device_id", "integer", None, minimum=0), Key("cache_dir", "string", None),
               Key("streams", "integer", None, minimum=1), Key("cuda_graph", "bool", None),
               Key("board", "string", None))
SUPPORTED = ((8, 6), (12, 0))  # [8.6, 12): the majors whose API this module follows
SUPPORTED_TEXT = "8.6, 10.x or 11.x"
STRONGLY_TYPED_FROM = (11, 0)
CALIBRATION_SAMPLES = 16
TIMINGS_KEPT = 1_000_000  # per-query timings kept for the statistics (the newest)
INSTALL = "pip install 'pytest-edgeai[tensorrt]' (or use the TensorRT that JetPack installs)"


def _trt() -> Any:
    return require("tensorrt", INSTALL)


def version_tuple(text: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def version_problem(version: str) -> str | None:
    """Why this TensorRT version cannot be used, or None when it is one this module supports."""
    lo, hi = SUPPORTED
    if lo <= version_tuple(version) < hi:
        return None
    return (f"TensorRT {version} is not supported (supported: {SUPPORTED_TEXT}): "
            f"pip install 'tensorrt>=8.6,<12' or a JetPack 6 (TensorRT 8.6/10.3) board")


def find_trtexec() -> str | None:
    """trtexec on PATH, or where TensorRT's deb packages and JetPack put it."""
    return shutil.which("trtexec") or shutil.which("/usr/src/tensorrt/bin/trtexec")


def trtexec_compute_ms(trtexec: str, engine: str, shapes: dict[str, tuple[int, ...]], workdir: Path,
                       seconds: float = 3.0) -> float:
    """trtexec's own median GPU compute time per query on an engine file: its --exportTimes JSON gives per
    query startComputeMs/endComputeMs (TensorRT developer guide, "trtexec"); 200 ms of warm-up as trtexec's
    default. BackendError with trtexec's last line when it fails or hangs."""
    times = workdir / "trtexec-times.json"
    shape = ",".join(f"{name}:{'x'.join(map(str, dims))}" for name, dims in shapes.items())
    argv = [trtexec, f"--loadEngine={engine}", f"--shapes={shape}", "--warmUp=200", f"--duration={seconds:g}",
            f"--exportTimes={times}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300 + seconds)
    except subprocess.TimeoutExpired:
        raise BackendError(f"trtexec did not finish in {300 + seconds:g} s: {' '.join(argv)}") from None
    if done.returncode != 0 or not times.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BackendError(f"trtexec failed ({done.returncode}): {tail[0]}")
    return statistics.median(float(q["endComputeMs"]) - float(q["startComputeMs"])
                             for q in json.loads(times.read_text()))


def build_options(device: Device) -> dict[str, Any]:
    check_keys(device, OPTION_KEYS, "tensorrt")
    shapes = choice(device, "shapes", "static", SHAPES)
    lo = positive_int(device, "batch_min", 1) or 1
    hi = positive_int(device, "batch_max", 8) or 8
    opt = positive_int(device, "batch_opt", lo) or lo
    if not lo <= opt <= hi:
        raise ConfigError([f"devices.{device.name}.options: batch_min {lo} <= batch_opt {opt} <= batch_max {hi} "
                           f"must hold"])
    board = device.options.get("board", "")
    if not isinstance(board, str):
        raise ConfigError([f"devices.{device.name}.options.board: {board!r} must be a string found in "
                           f"/proc/device-tree/model, e.g. \"Orin Nano\""])
    return {"fp16": flag(device, "fp16"), "int8": flag(device, "int8"), "shapes": shapes, "batch": [lo, opt, hi],
            "workspace_mb": positive_int(device, "workspace_mb", 1024),
            "device_id": int(device.options.get("device_id", 0)), "streams": positive_int(device, "streams", 1),
            "cuda_graph": flag(device, "cuda_graph"), "board": board}


class TensorRTBackend:
    """Builds (or reuses) TensorRT engines for an ONNX model on a CUDA GPU or a Jetson."""

    name = "tensorrt"
    OPTIONS = OPTION_KEYS

    def probe(self, device: Device) -> Availability:
        try:
            opts = build_options(device)
        except ConfigError as exc:
            return Availability(False, str(exc), runtime=self.name)
        details: dict[str, Any] = {}
        if device.kind == "jetson":
            board = jetson.board()
            details.update(board)
            problem = jetson.board_problem(board, opts["board"])
            if problem:
                return Availability(False, problem, runtime=self.name, details=details)
        try:
            trt = _trt()
        except BackendError as exc:
            return Availability(False, str(exc), runtime=self.name, details=details)
        problem = version_problem(trt.__version__)
        if problem:
            return Availability(False, problem, runtime=self.name, runtime_version=trt.__version__, details=details)
        try:
            rt = cuda.cudart()
            count = cuda.call(rt, "cudaGetDeviceCount")
        except BackendError as exc:
            return Availability(False, str(exc), runtime=self.name, runtime_version=trt.__version__, details=details)
        if opts["device_id"] >= count:
            return Availability(False, f"TensorRT {trt.__version__}: CUDA sees {count} GPU(s), not device "
                                       f"{opts['device_id']}: check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES",
                                runtime=self.name, runtime_version=trt.__version__, details=details)
        details.update({**cuda.device_identity(rt, opts["device_id"]), **cuda.runtime_versions(rt)})
        if device.kind == "jetson":
            details.update(jetson.state())
        return Availability(True, runtime=self.name, runtime_version=trt.__version__, details=details)

    def refuses(self, model: Model, device: Device) -> str | None:
        return (None if model.format in ("onnx", "tensorrt")
                else f"TensorRT builds engines from .onnx or loads .engine/.plan, not {model.format}")

    def load(self, model: Model, device: Device) -> TensorRTSession:
        opts = build_options(device)
        trt = _trt()
        problem = version_problem(trt.__version__)
        if problem:
            raise BackendError(problem)
        rt = cuda.cudart()
        cuda.call(rt, "cudaSetDevice", opts["device_id"])
        identity = cuda.device_identity(rt, opts["device_id"])
        if model.format not in ("onnx", "tensorrt"):
            raise ModelError(f"{model.path}: TensorRT builds engines from .onnx or loads .engine/.plan, "
                             f"not {model.format}")
        builder = EngineBuilder(trt, model, opts, identity, device)
        info = {"tensorrt_version": trt.__version__, **identity, **cuda.runtime_versions(rt),
                "precision": builder.precision, "shapes": opts["shapes"], "workspace_mb": opts["workspace_mb"],
                "streams": opts["streams"], "cuda_graph": opts["cuda_graph"], "host_buffers": "pinned (cudaMallocHost)"}
        if opts["shapes"] == "dynamic":
            info["batch_profile"] = opts["batch"]
        if device.kind == "jetson":
            info.update(jetson.board(), **jetson.state())
        return TensorRTSession(trt, rt, builder, info, opts)


def _onnx(model: Model, data: bytes) -> Any:
    import onnx

    try:
        return onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{model.path}: not a readable ONNX model: {type(exc).__name__}: {exc}") from None


def _to_fp16(onnx_bytes: bytes) -> bytes:
    """float32 -> float16 weights and activations, inputs and outputs kept float32 (onnxruntime's converter)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(onnx.load_from_string(onnx_bytes), keep_io_types=True)
    return bytes(converted.SerializeToString())


class EngineBuilder:
    """What to build for this model, TensorRT version and precision; builds and caches one engine per shape."""

    def __init__(self, trt: Any, model: Model, opts: dict[str, Any], identity: dict[str, Any], device: Device):
        self.trt, self.model, self.opts, self.identity = trt, model, opts, identity
        self.version = version_tuple(trt.__version__)
        self.cache = Path(device.options.get("cache_dir") or _default_cache())
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.onnx = model.path.read_bytes() if model.format == "onnx" else b""
        self.strongly_typed = self.version >= STRONGLY_TYPED_FROM
        self.proto = _onnx(model, self.onnx) if self.onnx else None
        self.qdq = self.proto is not None and any(n.op_type in ("QuantizeLinear", "DequantizeLinear")
                                                  for n in self.proto.graph.node)
        self.precision = self._precision()

    def _precision(self) -> str:
        if self.model.format == "tensorrt":
            return "as built (a serialised engine)"
        parts = []
        if self.opts["int8"]:
            if self.qdq:
                parts.append("int8 from the model's Q/DQ nodes (explicit quantization)")
            elif self.strongly_typed:
                raise BackendError(f"{self.model.path}: int8 on TensorRT {self.trt.__version__} needs a model with "
                                   f"QuantizeLinear/DequantizeLinear nodes (TensorRT 11 removed implicit int8 and its "
                                   f"calibrator): give a Q/DQ ONNX model (the compression suite's int8_static "
                                   f"variant, or NVIDIA ModelOpt), or set int8 = false")
            else:
                parts.append(f"int8 calibrated on {CALIBRATION_SAMPLES} seeded standard-normal batches "
                             f"(entropy calibrator 2, implicit quantization)")
        if self.opts["fp16"]:
            parts.append("fp16 from the ONNX model converted to float16 (onnxruntime converter, float32 "
                         "inputs/outputs; strongly typed)" if self.strongly_typed else "fp16 (BuilderFlag.FP16)")
        return "; ".join(parts) or "fp32 (the model's own types)" + ("; strongly typed" if self.strongly_typed else "")

    def inputs(self) -> list[tuple[str, tuple[int, ...], str]]:
        """(name, shape with -1 for free dims, dtype) of each network input, read from the ONNX model."""
        import onnx

        proto = self.proto
        if proto is None:  # a serialised engine: its inputs come from the engine
            return []
        inits = {i.name for i in proto.graph.initializer}
        out = []
        for i in proto.graph.input:
            if i.name in inits:
                continue
            t = i.type.tensor_type
            out.append((i.name, tuple(d.dim_value if d.dim_value else -1 for d in t.shape.dim),
                        onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name))
        return out

    def plan(self, batch: int | None) -> tuple[bytes, Path]:
        """The serialised engine for ``batch`` (static shapes) or for the whole profile (None)."""
        if self.model.format == "tensorrt":
            return self.model.path.read_bytes(), self.model.path
        lo, opt, hi = self.opts["batch"]
        profile = [batch, batch, batch] if batch is not None else [lo, opt, hi]
        key = json.dumps([self.model.sha256(), profile, self.precision, self.opts["workspace_mb"],
                          self.trt.__version__, self.identity["gpu"], self.identity["compute_capability"]])
        path = self.cache / f"{self.model.name}-b{'x'.join(map(str, profile))}-" \
                            f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.engine"
        def produce(tmp: Path) -> None:
            tmp.write_bytes(self._build(profile))

        return build_once(path, produce).read_bytes(), path

    def _build(self, profile_batch: list[int]) -> bytes:
        trt, opts = self.trt, self.opts
        builder = trt.Builder(self.logger)
        flags = 0
        explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
        if explicit is not None and self.version < (10, 0):  # required in 8.x, deprecated and ignored in 10
            flags |= 1 << int(explicit)
        typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        onnx_bytes = self.onnx
        if opts["fp16"] and self.strongly_typed:
            onnx_bytes = _to_fp16(onnx_bytes)
            if typed is not None:
                flags |= 1 << int(typed)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(f"{self.model.path}: TensorRT's ONNX parser rejects it: {errors or 'no reason given'}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts["workspace_mb"] << 20)
        if not self.strongly_typed:
            if opts["fp16"]:
                config.set_flag(trt.BuilderFlag.FP16)
            if opts["int8"]:
                config.set_flag(trt.BuilderFlag.INT8)
        profile = builder.create_optimization_profile()
        lo, opt, hi = profile_batch
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = tuple(tensor.shape)
            if any(d == -1 for d in shape[1:]):
                raise ModelError(f"{self.model.path}: input '{tensor.name}' has free dimensions besides the batch "
                                 f"{shape}: export it with fixed sizes")
            if shape and shape[0] == -1:
                rest = shape[1:]
                profile.set_shape(tensor.name, (lo, *rest), (opt, *rest), (hi, *rest))
        config.add_optimization_profile(profile)
        if opts["int8"] and not self.qdq and not self.strongly_typed:
            config.int8_calibrator = _calibrator(trt, network, opt)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BackendError(f"{self.model.path}: TensorRT {trt.__version__} could not build an engine "
                               f"({self.precision}, batch {profile_batch}); its log above says why (often: the "
                               f"workspace is too small, or a layer lacks support for that precision)")
        return bytes(plan)


def _default_cache() -> Path:
    return filecache.cache_dir("tensorrt")


class CalibrationBatches:
    """Seeded standard-normal batches in device buffers: what TensorRT's int8 calibrator hands the builder."""

    def __init__(self, rt: Any, inputs: list[Any], batch: int):
        import numpy as np

        self.rt, self.inputs, self.batch = rt, inputs, batch
        self.rng = np.random.default_rng(0)
        self.left = CALIBRATION_SAMPLES
        self.buffers: dict[str, Any] = {}

    def next_pointers(self) -> list[int] | None:
        """The device addresses of the next batch's inputs; None once every sample was given."""
        import numpy as np

        if self.left == 0:
            return None
        self.left -= 1
        rt, ptrs = self.rt, []
        for t in self.inputs:
            host = self.rng.standard_normal((self.batch, *tuple(t.shape)[1:])).astype(np.float32)
            if t.name not in self.buffers:
                self.buffers[t.name] = cuda.call(rt, "cudaMalloc", host.nbytes)
            cuda.call(rt, "cudaMemcpy", self.buffers[t.name], host.ctypes.data, host.nbytes,
                      rt.cudaMemcpyKind.cudaMemcpyHostToDevice)
            ptrs.append(int(self.buffers[t.name]))
        return ptrs


def _calibrator(trt: Any, network: Any, batch: int) -> Any:
    """An entropy calibrator fed seeded random batches (TensorRT < 11): recorded as such, not real data.

    TensorRT's Python calibrators subclass IInt8EntropyCalibrator2 and call its __init__ explicitly; the
    subclass is made with type() since the base is the vendor's (untyped) class."""
    feed = CalibrationBatches(cuda.cudart(), [network.get_input(i) for i in range(network.num_inputs)], batch)

    def init(self: Any) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)

    def get_batch_size(self: Any) -> int:
        return batch

    def get_batch(self: Any, names: list[str]) -> list[int] | None:
        return feed.next_pointers()

    def no_cache(self: Any, *cache: Any) -> None:
        return None

    methods = {"__init__": init, "get_batch_size": get_batch_size, "get_batch": get_batch,
               "read_calibration_cache": no_cache, "write_calibration_cache": no_cache}
    return type("Calibrator", (trt.IInt8EntropyCalibrator2,), methods)()


class _Slot:
    """One request: an execution context, its stream, four events, pinned host and device buffers.

    Sized for one input shape; a CUDA graph of the enqueue is captured once when asked.
    """

    def __init__(self, trt: Any, rt: Any, engine: Any, shapes: dict[str, tuple[int, ...]], cuda_graph: bool):
        import numpy as np

        self.trt, self.rt, self.engine = trt, rt, engine
        self.context = engine.create_execution_context()
        self.stream = cuda.call(rt, "cudaStreamCreate")
        self.events = [cuda.call(rt, "cudaEventCreate") for _ in range(4)]
        self.host: dict[str, np.ndarray] = {}
        self.device: dict[str, int] = {}
        self.pinned: list[int] = []
        self.graph: Any = None
        self.graph_error = ""
        self.want_graph = cuda_graph
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self.input_names]
        for name in self.input_names:
            if not self.context.set_input_shape(name, shapes[name]):
                raise BackendError(f"TensorRT: input '{name}' shape {shapes[name]} is outside the engine's profile")
        for name in names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
            ptr = cuda.call(rt, "cudaMallocHost", nbytes)
            self.pinned.append(ptr)
            buf = (ctypes.c_uint8 * nbytes).from_address(int(ptr))
            self.host[name] = np.frombuffer(buf, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
            self.device[name] = cuda.call(rt, "cudaMalloc", nbytes)
            self.context.set_tensor_address(name, int(self.device[name]))
        self.submitted_ns = 0

    def _enqueue_compute(self) -> None:
        if self.graph is not None:
            cuda.call(self.rt, "cudaGraphLaunch", self.graph, self.stream)
        elif not self.context.execute_async_v3(cuda.handle(self.stream)):
            raise BackendError("TensorRT execute_async_v3 failed (see the TensorRT log)")

    def _capture(self) -> None:
        """Capture the enqueue in a CUDA graph (after one ordinary enqueue, as TensorRT's guide asks)."""
        rt = self.rt
        try:
            cuda.call(rt, "cudaStreamBeginCapture", self.stream,
                      rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal)
            if not self.context.execute_async_v3(cuda.handle(self.stream)):
                raise BackendError("execute_async_v3 failed during capture")
            graph = cuda.call(rt, "cudaStreamEndCapture", self.stream)
            self.graph = cuda.call(rt, "cudaGraphInstantiate", graph, 0)
            cuda.call(rt, "cudaGraphDestroy", graph)
        except BackendError as exc:  # some engines cannot be captured: run them without a graph, and say so
            self.graph_error = str(exc)
            self.want_graph = False

    def submit(self, feeds: dict[str, np.ndarray] | None) -> None:
        """Copy ``feeds`` into the pinned inputs (None: keep the last), enqueue H2D, compute, D2H."""
        rt, stream = self.rt, self.stream
        h2d, d2h = rt.cudaMemcpyKind.cudaMemcpyHostToDevice, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.submitted_ns = time.perf_counter_ns()
        if feeds is not None:
            for name in self.input_names:
                self.host[name][...] = feeds[name]
        e0, e1, e2, e3 = self.events
        cuda.call(rt, "cudaEventRecord", e0, stream)
        for name in self.input_names:
            cuda.call(rt, "cudaMemcpyAsync", self.device[name], self.host[name].ctypes.data,
                      self.host[name].nbytes, h2d, stream)
        cuda.call(rt, "cudaEventRecord", e1, stream)
        self._enqueue_compute()
        cuda.call(rt, "cudaEventRecord", e2, stream)
        for name in self.output_names:
            cuda.call(rt, "cudaMemcpyAsync", self.host[name].ctypes.data, self.device[name],
                      self.host[name].nbytes, d2h, stream)
        cuda.call(rt, "cudaEventRecord", e3, stream)

    def complete(self) -> tuple[float, float, float, float]:
        """Wait for the request; (h2d, compute, d2h, host) in ms. Captures the graph after a first run."""
        rt = self.rt
        e0, e1, e2, e3 = self.events
        cuda.call(rt, "cudaEventSynchronize", e3)
        host_ms = (time.perf_counter_ns() - self.submitted_ns) / 1e6
        parts = (cuda.call(rt, "cudaEventElapsedTime", e0, e1), cuda.call(rt, "cudaEventElapsedTime", e1, e2),
                 cuda.call(rt, "cudaEventElapsedTime", e2, e3), host_ms)
        if self.want_graph and self.graph is None:
            self._capture()
        return parts

    def outputs(self) -> list[np.ndarray]:
        return [self.host[n].copy() for n in self.output_names]

    def close(self) -> None:
        rt = self.rt
        if self.graph is not None:
            cuda.call(rt, "cudaGraphExecDestroy", self.graph)
        for ptr in self.device.values():
            cuda.call(rt, "cudaFree", ptr)
        for ptr in self.pinned:
            cuda.call(rt, "cudaFreeHost", ptr)
        for ev in self.events:
            cuda.call(rt, "cudaEventDestroy", ev)
        cuda.call(rt, "cudaStreamDestroy", self.stream)
        self.device, self.pinned, self.events, self.context = {}, [], [], None


class TensorRTSession:
    """Engines (one per batch, or one over the profile), request slots per shape, per-query timings."""

    def __init__(self, trt: Any, rt: Any, builder: EngineBuilder, info: dict[str, Any], opts: dict[str, Any]):
        self._trt, self._rt, self._builder, self._info, self._opts = trt, rt, builder, info, opts
        self._runtime = trt.Runtime(builder.logger)
        self._engines: dict[int | None, Any] = {}
        self._slots: dict[tuple[tuple[str, tuple[int, ...]], ...], list[_Slot]] = {}
        self._timings: dict[str, deque[float]] = {k: deque(maxlen=TIMINGS_KEPT)
                                                  for k in ("h2d_ms", "compute_ms", "d2h_ms", "host_ms")}
        self._engine_files: dict[str, str] = {}
        if builder.model.format == "tensorrt":
            engine = self._engine(None)
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            ios = [(n, tuple(engine.get_tensor_shape(n)), engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT,
                    str(trt.nptype(engine.get_tensor_dtype(n)).__name__)) for n in names]
            self.inputs = [TensorSpec(n, _free(s), d) for n, s, is_in, d in ios if is_in]
            self.outputs = [TensorSpec(n, _free(s), d) for n, s, is_in, d in ios if not is_in]
        else:
            self.inputs = [TensorSpec(n, _free(s), d) for n, s, d in builder.inputs()]
            self.outputs = []

    def _engine(self, batch: int | None) -> Any:
        key = None if self._opts["shapes"] == "dynamic" or self._builder.model.format == "tensorrt" else batch
        if key not in self._engines:
            plan, path = self._builder.plan(key)
            engine = self._runtime.deserialize_cuda_engine(plan)
            if engine is None:
                raise BackendError(f"{path}: TensorRT {self._trt.__version__} cannot deserialise this engine (built "
                                   f"by another TensorRT version or for another GPU?): delete it to rebuild")
            self._engines[key] = engine
            self._engine_files[f"batch {key}" if key else "profile"] = str(path)
        return self._engines[key]

    def _slots_for(self, feeds: dict[str, np.ndarray], count: int) -> list[_Slot]:
        shapes = {name: tuple(arr.shape) for name, arr in feeds.items()}
        key = tuple(sorted(shapes.items()))
        slots = self._slots.setdefault(key, [])
        if len(slots) < count:
            batch = next(iter(shapes.values()))[0] if shapes else 1
            engine = self._engine(batch)
            try:
                slots += [_Slot(self._trt, self._rt, engine, shapes, self._opts["cuda_graph"])
                          for _ in range(count - len(slots))]
            except BackendError as exc:
                lo, _, hi = self._opts["batch"]
                raise BackendError(f"{exc} (batch {lo}..{hi}): widen batch_min/batch_max") from None
        if not self.outputs:
            s = slots[0]
            self.outputs = [TensorSpec(n, (None, *s.host[n].shape[1:]), s.host[n].dtype.name) for n in s.output_names]
        return slots[:count]

    def _keep(self, parts: tuple[float, float, float, float]) -> None:
        for key, value in zip(("h2d_ms", "compute_ms", "d2h_ms", "host_ms"), parts):
            self._timings[key].append(value)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        [slot] = self._slots_for(feeds, 1)
        slot.submit(feeds)
        self._keep(slot.complete())  # synchronised: the outputs are on the host from here on
        return slot.outputs()

    def prefers_async(self) -> bool:
        return bool(self._opts["streams"] > 1)

    def run_async(self, feeds: dict[str, np.ndarray], min_count: int, min_duration_s: float,
                  progress: AsyncProgress | None = None) -> AsyncRun:
        slots = self._slots_for(feeds, self._opts["streams"])
        for slot in slots:
            for name in slot.input_names:
                slot.host[name][...] = feeds[name]
        return drive(OldestFirstQueue(slots, self._keep, (BackendError,)), min_count, min_duration_s, progress)

    def timings(self, last: int | None = None) -> dict[str, Any]:
        """Statistics of the newest ``last`` queries, split as trtexec splits them: H2D, GPU compute, D2H
        (CUDA events) and host wall time (submit -> outputs on the host)."""
        import numpy as np

        out: dict[str, Any] = {}
        for key, values in self._timings.items():
            data = np.asarray(list(values)[-last:] if last else list(values), dtype=float)
            if data.size:
                out[key] = {"mean": float(data.mean()), "min": float(data.min()), "max": float(data.max()),
                            **{f"p{q}": float(np.percentile(data, q)) for q in (50, 90, 99)}}
                out["queries"] = int(data.size)
        return out

    def settings(self) -> dict[str, Any]:
        graphs = [s.graph_error for slots in self._slots.values() for s in slots if s.graph_error]
        return {**self._info, "engines": dict(self._engine_files),
                **({"cuda_graph_error": graphs[0]} if graphs else {}),
                "timing": "CUDA events per query (h2d, compute, d2h) and host perf_counter, pinned host buffers"}

    def close(self) -> None:
        for slots in self._slots.values():
            for slot in slots:
                slot.close()
        self._slots.clear()
        self._engines.clear()


def _free(shape: tuple[int, ...]) -> tuple[int | None, ...]:
    return tuple(None if d < 0 else d for d in shape)

