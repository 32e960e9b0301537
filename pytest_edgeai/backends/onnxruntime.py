"""onnxruntime: the CPU here; CUDA and TensorRT execution providers where they are installed.

Providers, thread counts and session options come from the device's ``options`` table in
devices.toml and are recorded, as applied, with every result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import filecache
from ..errors import BackendError, ConfigError, ModelError
from ..keys import Key
from ..registry import distribution_version
from . import cuda, jetson, ort_gpu
from .asynchronous import AsyncProgress, AsyncRun
from .base import Availability, TensorSpec
from .device_options import check_keys, positive_int

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device
    from ..models.model import Model

GRAPH_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
OPTION_KEYS = (Key("providers", "list", None), Key("provider_options", "table", None),
               Key("intra_op_num_threads", "integer", None, minimum=0),
               Key("inter_op_num_threads", "integer", None, minimum=0),
               Key("execution_mode", "string", None, choices=("sequential", "parallel")),
               Key("graph_optimization_level", "string", None, choices=tuple(GRAPH_LEVELS)),
               Key("enable_cpu_mem_arena", "bool", None), Key("cache_dir", "string", None),
               Key("streams", "integer", None, minimum=1))
DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
          "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8",
          "tensor(uint8)": "uint8", "tensor(bool)": "bool"}
DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError(f"onnxruntime is not importable ({exc}): pip install onnxruntime") from None
    return onnxruntime


def requested_providers(device: Device) -> list[str]:
    return list(device.options.get("providers", ["CPUExecutionProvider"]))


class OnnxRuntimeBackend:
    """Loads ONNX models into an InferenceSession with the configured providers."""

    name = "onnxruntime"
    OPTIONS = OPTION_KEYS

    def probe(self, device: Device) -> Availability:
        try:
            ort = _ort()
        except BackendError as exc:
            return Availability(False, str(exc), runtime=self.name)
        version = ort.__version__
        available = ort.get_available_providers()
        missing = [p for p in requested_providers(device) if p not in available]
        if missing:
            distribution = next((d for d in DISTRIBUTIONS if distribution_version(d)), None)
            return Availability(
                False,
                f"onnxruntime {version} (available: {', '.join(available)}): "
                + "; ".join(ort_gpu.missing_reason(p, available, distribution) for p in missing),
                runtime=self.name, runtime_version=version)
        if (positive_int(device, "streams", 1) or 1) > 1:
            try:
                cuda.cudart()
            except BackendError as exc:
                return Availability(False, f"streams: {exc}", runtime=self.name, runtime_version=version)
        if "TensorrtExecutionProvider" in requested_providers(device):
            problem = (ort_gpu.tensorrt_provider_problem(version, distribution_version(*ort_gpu.TENSORRT_DISTRIBUTIONS))
                       or ort_gpu.cuda_major_problem(version, ort_gpu.build_cuda_major(ort), ort_gpu.tensorrt_wheels()))
            if problem:
                return Availability(False, problem, runtime=self.name, runtime_version=version)
        if any(p in ort_gpu.GPU_PROVIDERS for p in requested_providers(device)):
            problem = ort_gpu.driver_problem(ort)
            if problem:
                return Availability(False, problem, runtime=self.name, runtime_version=version)
            ort_gpu.preload(ort)
            _, providers, provider_options = _session_options(ort, device)
            dropped = ort_gpu.dropped_providers(ort, providers, provider_options)
            if dropped:
                return Availability(False, f"onnxruntime {version} lists {', '.join(dropped)} but a session does "
                                           f"not get it (its libraries did not load): {ort_gpu.libraries_fix(ort)}",
                                    runtime=self.name, runtime_version=version)
        return Availability(True, runtime=self.name, runtime_version=version,
                            details={"providers": available,
                                     **({"cuda_build": ort.cuda_version} if ort_gpu.build_cuda_major(ort) else {}),
                                     "distribution": next((d for d in DISTRIBUTIONS
                                                           if distribution_version(d)), "onnxruntime")})

    def refuses(self, model: Model, device: Device) -> str | None:
        return None if model.format == "onnx" else f"onnxruntime runs .onnx models, not {model.format}"

    def load(self, model: Model, device: Device) -> OnnxRuntimeSession:
        ort = _ort()
        why = self.refuses(model, device)
        if why:
            raise ModelError(f"{model.path}: {why}")
        options, providers, provider_options = _session_options(ort, device)
        streams = positive_int(device, "streams", 1) or 1
        problem = ort_gpu.streams_problem(device, providers, streams)
        if problem:
            raise ConfigError([problem])

        libraries = ort_gpu.preload(ort) if any(p in ort_gpu.GPU_PROVIDERS for p in providers) else None

        def create(first_provider_options: dict[str, Any] | None = None) -> Any:
            per_provider = list(provider_options)
            if first_provider_options is not None:
                per_provider[0] = first_provider_options
            try:
                made = ort.InferenceSession(str(model.path), sess_options=options, providers=providers,
                                            provider_options=per_provider)
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
                raise ModelError(f"{model.path}: onnxruntime cannot load it: {_first_line(exc)}") from None
            ort_gpu.check_applied(providers, made.get_providers(), str(model.path), ort_gpu.libraries_fix(ort))
            return made

        session = create()
        pool = (ort_gpu.StreamSessions(create, provider_options[0], streams, str(model.path))
                if streams > 1 else None)
        return OnnxRuntimeSession(session, options, device, pool, libraries)


def _session_options(ort: Any, device: Device) -> tuple[Any, list[str], list[dict[str, Any]]]:
    opts = check_keys(device, OPTION_KEYS, "onnxruntime")
    so = ort.SessionOptions()
    if "intra_op_num_threads" in opts:
        so.intra_op_num_threads = int(opts["intra_op_num_threads"])
    if "inter_op_num_threads" in opts:
        so.inter_op_num_threads = int(opts["inter_op_num_threads"])
    if opts.get("execution_mode") == "parallel":
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    level = opts.get("graph_optimization_level", "all")
    if level not in GRAPH_LEVELS:
        raise ConfigError([f"devices.{device.name}.options.graph_optimization_level: {level!r} is not "
                           f"allowed; allowed: {', '.join(GRAPH_LEVELS)}"])
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_LEVELS[level])
    if "enable_cpu_mem_arena" in opts:
        so.enable_cpu_mem_arena = bool(opts["enable_cpu_mem_arena"])
    providers = requested_providers(device)
    ort_gpu.check_provider_options(device, providers)
    trt_cache = str(opts.get("cache_dir") or filecache.cache_dir("ort-tensorrt"))
    provider_options = [ort_gpu.with_defaults(p, dict(opts.get("provider_options", {}).get(p, {})), trt_cache)
                        for p in providers]
    return so, providers, provider_options


class OnnxRuntimeSession:
    """An InferenceSession; ``run`` is synchronous, outputs are on the host when it returns. With
    ``streams = N`` (CUDA provider) offline throughput runs N requests in flight (ort_gpu.StreamSessions)."""

    def __init__(self, session: Any, options: Any, device: Device, pool: ort_gpu.StreamSessions | None = None,
                 libraries: str | None = None):
        self._session = session
        self._libraries = libraries
        self._options = options
        self._device = device
        self._pool = pool
        self.inputs = [TensorSpec(i.name, tuple(i.shape), DTYPES.get(i.type, i.type)) for i in session.get_inputs()]
        self.outputs = [TensorSpec(o.name, tuple(o.shape), DTYPES.get(o.type, o.type)) for o in session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs: list[np.ndarray] = self._session.run(None, feeds)
        return outputs

    def prefers_async(self) -> bool:
        return self._pool is not None

    def run_async(self, feeds: dict[str, np.ndarray], min_count: int, min_duration_s: float,
                  progress: AsyncProgress | None = None) -> AsyncRun:
        if self._pool is None:
            raise BackendError("onnxruntime runs one request at a time here: set streams = N (CUDA provider)")
        return self._pool.run_async(feeds, min_count, min_duration_s, progress)

    def settings(self) -> dict[str, Any]:
        so = self._options
        return {
            "providers": self._session.get_providers(),
            "provider_options": self._session.get_provider_options(),
            "intra_op_num_threads": so.intra_op_num_threads,  # 0 = onnxruntime's default (physical cores)
            "inter_op_num_threads": so.inter_op_num_threads,
            "execution_mode": str(so.execution_mode),
            "graph_optimization_level": str(so.graph_optimization_level),
            "streams": len(self._pool.sessions) if self._pool else 1,
            **({"cuda_libraries": self._libraries} if self._libraries else {}),
            **({"in_flight": "one InferenceSession per stream, each on a CUDA stream of its own "
                             "(user_compute_stream) and run by a host thread of its own"} if self._pool else {}),
            **(jetson.state() if self._device.kind == "jetson" else {}),
        }

    def close(self) -> None:
        self._session = None
        if self._pool is not None:
            self._pool.close()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
