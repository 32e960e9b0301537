"""onnxruntime's GPU execution providers (CUDA, TensorRT): why one is missing, and whether it took.

onnxruntime lists the CUDA provider whenever onnxruntime-gpu is installed, yet falls back to
the CPU with only a log line when CUDA or cuDNN libraries are missing at session creation. A
result measured that way would be labelled GPU and be a CPU figure, so a load checks which
providers the session actually got.

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
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError, did_you_mean
from . import cuda
from .asynchronous import AsyncProgress, AsyncRun, OldestFirstQueue, ThreadSlot, drive

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device

GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
INSTALL = {
    "CUDAExecutionProvider": "pip install onnxruntime-gpu (uninstall the CPU-only onnxruntime first: both "
                             "provide the same module) and the CUDA/cuDNN versions it was built for",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu and TensorRT (the tensorrt wheel or JetPack's), "
                                 "with TensorRT's libraries on the loader path",
}


TENSORRT_DISTRIBUTIONS = ("tensorrt-cu12-bindings", "tensorrt-cu13-bindings", "tensorrt")
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


def check_applied(requested: list[str], applied: list[str], path: str) -> None:
    """BackendError when onnxruntime silently dropped a requested GPU provider."""
    dropped = [p for p in requested if p in GPU_PROVIDERS and p not in applied]
    if dropped:
        raise BackendError(f"{path}: onnxruntime did not enable {', '.join(dropped)} (the session got "
                           f"{', '.join(applied)}): its CUDA/cuDNN/TensorRT libraries failed to load; see "
                           f"onnxruntime's log and the versions its build needs")


STREAM_PROVIDER = "CUDAExecutionProvider"


def streams_problem(device: Device, providers: list[str], streams: int) -> str | None:
    """Why ``streams`` cannot apply to these providers (it needs the CUDA provider first), or None."""
    if streams > 1 and (not providers or providers[0] != STREAM_PROVIDER):
        return (f"devices.{device.name}.options.streams: {streams} streams need {STREAM_PROVIDER} first in "
                f"providers (each request gets a CUDA stream of its own), not {', '.join(providers) or 'none'}")
    return None


class StreamSessions:
    """N InferenceSessions on N non-blocking CUDA streams of their own; ``run_async`` keeps one request in
    flight on each. ``create(options)`` makes a session whose CUDA provider gets ``options``."""

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
                check_applied([STREAM_PROVIDER], session.get_providers(), path)
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
