"""onnxruntime's GPU execution providers (CUDA, TensorRT): why one is missing, and whether it took.

onnxruntime lists the CUDA provider whenever onnxruntime-gpu is installed, yet falls back to
the CPU with only a log line when CUDA or cuDNN libraries are missing at session creation. A
result measured that way would be labelled GPU and be a CPU figure, so the probe creates a session on
a one-node model and a load checks which providers the session actually got.

CUDA 12 and 13: a build needs the CUDA major it was built for (``onnxruntime.cuda_version``) and cuDNN 9
("ONNX Runtime built with CUDA 12.x are compatible with any CUDA 12.x version", CUDA EP docs). PyPI's
onnxruntime-gpu 1.19-1.26 are CUDA 12 builds, 1.27 on CUDA 13 (their ``[cuda]`` extra requires
nvidia-cuda-runtime-cu12~=12.0 through 1.26 and nvidia-cuda-runtime-cu13 / nvidia-cuda-runtime ~=13.0 from
1.27; the ``[cuda,cudnn]`` extras and ``onnxruntime.preload_dlls`` exist from 1.21). Where those NVIDIA
wheels are installed, a load preloads them (``preload_dlls``, what the docs ask for wheels not on the
loader path); the record says where the libraries came from. The probe also asks the driver which CUDA it
runs (cudaDriverGetVersion, where cuda-python is installed): a CUDA 13 build on a CUDA 12 driver is one line.

``streams = N`` keeps N requests in flight for offline throughput, as trtexec's --streams does: N
InferenceSessions, each given a CUDA stream of its own through the CUDA provider's documented option
``user_compute_stream`` (the stream's address as a string; it sets ``has_user_compute_stream`` itself;
Python API since onnxruntime 1.17, microsoft/onnxruntime#19229), each run by a host thread of its own
(``InferenceSession.Run`` is thread-safe and the Python binding releases the GIL while it runs). A
session's Run synchronises its stream before it returns, so each request's outputs are on the host when
its thread finishes; the streams are created non-blocking, so they do not serialise on the legacy default
stream.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError, did_you_mean
from ..registry import distribution_version
from . import cuda
from .asynchronous import AsyncProgress, AsyncRun, OldestFirstQueue, ThreadSlot, drive

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device

GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
# the onnxruntime-gpu releases on PyPI built for each CUDA major, with the NVIDIA wheels of that major
FOR_CUDA = {12: "onnxruntime-gpu[cuda,cudnn]>=1.21,<1.27", 13: "onnxruntime-gpu[cuda,cudnn]>=1.27,<2"}
CUDA_RUNTIME_WHEELS = {12: ("nvidia-cuda-runtime-cu12",), 13: ("nvidia-cuda-runtime", "nvidia-cuda-runtime-cu13")}
INSTALL = {
    "CUDAExecutionProvider": f"pip install '{FOR_CUDA[13]}' for CUDA 13 or '{FOR_CUDA[12]}' for CUDA 12 "
                             f"(uninstall the CPU-only onnxruntime first: both provide the same module)",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu and TensorRT (the tensorrt wheel or JetPack's), "
                                 "with TensorRT's libraries on the loader path",
}


TENSORRT_DISTRIBUTIONS = ("tensorrt-cu12-bindings", "tensorrt-cu13-bindings", "tensorrt")
TENSORRT_BY_CUDA = {12: ("tensorrt-cu12-bindings", "tensorrt-cu12"), 13: ("tensorrt-cu13-bindings", "tensorrt-cu13")}
# ONNX Runtime's TensorRT provider called IBuilder::platformHasFastFp16, which TensorRT 11 removed; 1.27 is
# the first release that builds against TensorRT 11 (TensorRT 11.0 release notes, known issues).
ORT_FOR_TENSORRT_11 = (1, 27)


def tensorrt_provider_problem(ort_version: str, trt_version: str | None) -> str | None:
    """Why onnxruntime's TensorRT provider cannot use the installed TensorRT, or None."""
    def major_minor(text: str) -> tuple[int, int]:
        parts = (text.split(".") + ["0"])[:2]
        return int(parts[0]) if parts[0].isdigit() else 0, int(parts[1]) if parts[1].isdigit() else 0

    if trt_version and major_minor(trt_version)[0] >= 11 and major_minor(ort_version) < ORT_FOR_TENSORRT_11:
        return (f"onnxruntime {ort_version}'s TensorRT provider does not run with TensorRT {trt_version} (TensorRT 11 "
                f"removed APIs it calls): pip install 'onnxruntime-gpu>=1.27', or TensorRT 10")
    return None


def missing_reason(provider: str, available: list[str], distribution: str | None) -> str:
    """Why ``provider`` is not available, and what to install."""
    if provider in INSTALL:
        have = f"the installed distribution is {distribution}" if distribution else "no onnxruntime distribution found"
        return f"lacks {provider} ({have}): {INSTALL[provider]}"
    return f"lacks {provider}{did_you_mean(provider, available)}: install the onnxruntime build that has it"


def check_provider_options(device: Device, providers: list[str]) -> None:
    """provider_options must name providers from the providers list, each with a table."""
    opts = device.options.get("provider_options", {})
    if not isinstance(opts, dict):
        raise ConfigError([f"devices.{device.name}.options.provider_options: must be a table of provider tables"])
    bad = [f"devices.{device.name}.options.provider_options.{p}: not in providers ({', '.join(providers)})"
           f"{did_you_mean(p, providers)}" for p in opts if p not in providers]
    bad += [f"devices.{device.name}.options.provider_options.{p}: must be a table" for p, v in opts.items()
            if not isinstance(v, dict)]
    if bad:
        raise ConfigError(bad)


def with_defaults(provider: str, options: dict[str, Any], cache_dir: str) -> dict[str, Any]:
    """TensorRT EP engines are cached by default (a build takes minutes); the user's options win."""
    if provider == "TensorrtExecutionProvider":
        return {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache_dir, **options}
    return options


def build_cuda_major(ort: Any) -> int | None:
    """The CUDA major this onnxruntime was built for (``onnxruntime.cuda_version``; None for a CPU build)."""
    major = str(getattr(ort, "cuda_version", "") or "").split(".")[0]
    return int(major) if major.isdigit() else None


def libraries_fix(ort: Any) -> str:
    """What to install when the GPU providers' libraries do not load, for the onnxruntime build at hand."""
    major = build_cuda_major(ort)
    if major is None:
        return "this onnxruntime is not a CUDA build: " + INSTALL["CUDAExecutionProvider"]
    other = "; ".join(f"for CUDA {m}: pip install '{req}'" for m, req in FOR_CUDA.items() if m != major)
    return (f"onnxruntime-gpu {ort.__version__} is built for CUDA {ort.cuda_version} and needs CUDA {major}.x "
            f"and cuDNN 9: pip install 'onnxruntime-gpu[cuda,cudnn]=={ort.__version__}' (NVIDIA's wheels, "
            f"preloaded at load), or put CUDA {major}.x and cuDNN 9 on the loader path"
            + (f"; {other}" if other else ""))


@cache
def preload(ort: Any) -> str:
    """Load the CUDA and cuDNN libraries from NVIDIA's wheels of the build's CUDA major, where installed
    (``onnxruntime.preload_dlls``, 1.21+); where the libraries come from, for the record."""
    major = build_cuda_major(ort)
    wheel = next((w for w in CUDA_RUNTIME_WHEELS.get(major or 0, ()) if distribution_version(w)), None)
    if wheel is None or not hasattr(ort, "preload_dlls"):
        return "the loader path"
    ort.preload_dlls()
    return f"NVIDIA's wheels ({wheel} {distribution_version(wheel)}), preloaded by onnxruntime.preload_dlls"


# the driver branch each CUDA major needs (CUDA toolkit release notes, "CUDA minor version compatibility")
DRIVER_FOR_CUDA = {12: "525.60.13", 13: "580"}


def driver_problem(ort: Any) -> str | None:
    """Why the NVIDIA driver cannot run this onnxruntime build: it supports an older CUDA major than the build
    needs (cudaDriverGetVersion, through cuda-python where it is installed); None when it can or nobody can tell."""
    major = build_cuda_major(ort)
    try:
        supported = int(cuda.call(cuda.cudart(), "cudaDriverGetVersion"))
    except BackendError:  # no cuda-python, or no driver at all: the session check below says what happens
        return None
    if major is None or supported // 1000 >= major:
        return None
    if supported == 0:  # "If no driver is installed, then 0 is returned" (CUDA Runtime API, cudaDriverGetVersion)
        return (f"no NVIDIA driver is installed (cudaDriverGetVersion gives 0): install one (onnxruntime-gpu "
                f"{ort.__version__} is built for CUDA {ort.cuda_version}, which needs >= "
                f"{DRIVER_FOR_CUDA.get(major, 'a newer branch')})")
    other = FOR_CUDA.get(supported // 1000)
    return (f"the NVIDIA driver supports CUDA up to {supported // 1000}.{supported % 1000 // 10} but onnxruntime-gpu "
            f"{ort.__version__} is built for CUDA {ort.cuda_version}: update the driver (CUDA {major} needs "
            f">= {DRIVER_FOR_CUDA.get(major, 'a newer branch')})" + (f", or pip install '{other}'" if other else ""))


def dropped_providers(ort: Any, providers: list[str], provider_options: list[dict[str, Any]]) -> list[str]:
    """The requested GPU providers a session does not get (their libraries did not load), found by creating
    a session on a one-node model: get_available_providers() lists them either way."""
    import onnx
    from onnx import TensorProto, helper

    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("x", "y"))
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=providers, provider_options=provider_options)
    got = session.get_providers()
    return [p for p in providers if p in GPU_PROVIDERS and p not in got]


def check_applied(requested: list[str], applied: list[str], path: str, fix: str) -> None:
    """BackendError when onnxruntime silently dropped a requested GPU provider."""
    dropped = [p for p in requested if p in GPU_PROVIDERS and p not in applied]
    if dropped:
        raise BackendError(f"{path}: onnxruntime did not enable {', '.join(dropped)} (the session got "
                           f"{', '.join(applied)}): its libraries failed to load: {fix}")


def tensorrt_wheels() -> dict[int, str | None]:
    """The version of NVIDIA's TensorRT wheel installed for each CUDA major (None: not installed)."""
    return {major: distribution_version(*names) for major, names in TENSORRT_BY_CUDA.items()}


def cuda_major_problem(ort_version: str, ort_cuda_major: int | None, tensorrt: dict[int, str | None]) -> str | None:
    """Why the TensorRT provider cannot load the installed TensorRT: only a TensorRT wheel of another CUDA
    major is there (``tensorrt``: tensorrt_wheels()). JetPack's TensorRT is no wheel and is not judged here."""
    if ort_cuda_major is None or tensorrt.get(ort_cuda_major) or not any(tensorrt.values()):
        return None
    found = ", ".join(f"tensorrt-cu{m} {v}" for m, v in tensorrt.items() if v)
    return (f"onnxruntime-gpu {ort_version} is built for CUDA {ort_cuda_major} but the TensorRT installed is "
            f"{found}: pip install 'pytest-edgeai[tensorrt{'-cu13' if ort_cuda_major == 13 else ''}]', or the "
            f"onnxruntime-gpu of TensorRT's CUDA: "
            + "; ".join(f"pip install '{FOR_CUDA[m]}'" for m, v in tensorrt.items() if v and m in FOR_CUDA))


STREAM_PROVIDER = "CUDAExecutionProvider"


def streams_problem(device: Device, providers: list[str], streams: int) -> str | None:
    """Why ``streams`` cannot apply to these providers (it needs the CUDA provider first), or None."""
    if streams > 1 and (not providers or providers[0] != STREAM_PROVIDER):
        return (f"devices.{device.name}.options.streams: {streams} streams need {STREAM_PROVIDER} first in "
                f"providers (each request gets a CUDA stream of its own), not {', '.join(providers) or 'none'}")
    return None


class StreamSessions:
    """N InferenceSessions on N non-blocking CUDA streams of their own; ``run_async`` keeps one request in
    flight on each. ``create(options)`` makes a session whose CUDA provider gets ``options`` (and checks that
    it got the provider)."""

    def __init__(self, create: Callable[[dict[str, Any]], Any], cuda_options: dict[str, Any], count: int,
                 path: str):
        rt = cuda.cudart()
        cuda.call(rt, "cudaSetDevice", int(cuda_options.get("device_id", 0)))
        self._rt = rt
        self._streams: list[Any] = []
        self.sessions: list[Any] = []
        try:
            for _ in range(count):
                stream = cuda.call(rt, "cudaStreamCreateWithFlags", rt.cudaStreamNonBlocking)
                self._streams.append(stream)
                session = create({**cuda_options, "user_compute_stream": str(cuda.handle(stream))})
                took = session.get_provider_options().get(STREAM_PROVIDER, {}).get("has_user_compute_stream")
                if str(took) != "1":
                    raise BackendError(f"{path}: onnxruntime did not take the CUDA stream it was given "
                                       f"(has_user_compute_stream = {took!r}; the Python API passes "
                                       f"user_compute_stream from onnxruntime 1.17): pip install "
                                       f"'onnxruntime-gpu>=1.20'")
                self.sessions.append(session)
        except BaseException:
            self.close()
            raise

    def run_async(self, feeds: dict[str, np.ndarray], min_count: int, min_duration_s: float,
                  progress: AsyncProgress | None = None) -> AsyncRun:
        with ExitStack() as threads:
            slots = [threads.enter_context(ThreadSlot(partial(session.run, None), feeds))
                     for session in self.sessions]
            return drive(OldestFirstQueue(slots), min_count, min_duration_s, progress)

    def close(self) -> None:
        """The sessions go first: a stream must outlive the session that runs on it."""
        self.sessions.clear()
        for stream in self._streams:
            cuda.call(self._rt, "cudaStreamDestroy", stream)
        self._streams.clear()
