"""What inference runtimes and drivers this machine has, for ``pytest-edgeai devices``.

Each entry is looked up on its own, lazily, and a runtime that is missing or fails to start
says so in its row instead of stopping the listing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..registry import distribution_version


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str  # "-" when not installed
    detail: str  # devices or providers it sees, or why it is unusable


def _onnxruntime() -> str:
    import onnxruntime

    return "providers: " + ", ".join(onnxruntime.get_available_providers())


def _openvino() -> str:
    from .openvino import openvino_module

    return "devices: " + (", ".join(openvino_module().Core().available_devices) or "none")


def _litert() -> str:
    from .litert import interpreter_module

    return f"interpreter: {interpreter_module()[2]}"


def _tensorrt() -> str:
    from . import cuda

    rt = cuda.cudart()
    count = cuda.call(rt, "cudaGetDeviceCount")
    gpus = [cuda.device_identity(rt, i) for i in range(count)]
    versions = cuda.runtime_versions(rt)
    return (f"CUDA driver {versions['cuda_driver']}, runtime {versions['cuda_runtime']}; GPUs: "
            + (", ".join(f"{g['gpu']} (sm {g['compute_capability']})" for g in gpus) or "none"))


def _torch() -> str:
    import torch

    if not torch.cuda.is_available():
        return "CUDA: " + ("not available" if torch.version.cuda else "CPU-only build")
    return f"CUDA {torch.version.cuda}: " + ", ".join(torch.cuda.get_device_name(i)
                                                      for i in range(torch.cuda.device_count()))


def _nvidia_driver() -> str:
    import pynvml

    pynvml.nvmlInit()
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        return (f"driver {version.decode() if isinstance(version, bytes) else version}, "
                f"{pynvml.nvmlDeviceGetCount()} GPU(s)")
    finally:
        pynvml.nvmlShutdown()


def _edgetpu() -> str:
    from . import edgetpu

    tpus = edgetpu.list_tpus()
    info = Path("/var/lib/dpkg/info")
    packages = sorted(p.stem for p in info.glob("libedgetpu1-*.list")) if info.is_dir() else []
    return (f"attached: {', '.join(t.name for t in tpus) or 'none'}; "
            f"libedgetpu package: {', '.join(packages) or 'not installed'}")


PROBES: list[tuple[str, tuple[str, ...], str, Callable[[], str]]] = [
    # (row name, distributions giving the version, module that must import, detail)
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"), "onnxruntime", _onnxruntime),
    ("openvino", ("openvino",), "openvino", _openvino),
    ("litert", ("ai-edge-litert", "tflite-runtime", "tensorflow", "tensorflow-cpu"), "", _litert),
    ("tensorrt", ("tensorrt", "tensorrt-cu12-bindings", "tensorrt-cu13-bindings", "tensorrt-cu12"), "tensorrt",
     _tensorrt),
    ("torch", ("torch",), "torch", _torch),
    ("nvidia driver", (), "pynvml", _nvidia_driver),
    ("edgetpu", (), "", _edgetpu),
]


def runtimes() -> list[Runtime]:
    rows = []
    for name, dists, module, detail in PROBES:
        version = distribution_version(*dists) or "-"
        try:
            if module:
                importlib.import_module(module)
            text = detail()
        except Exception as exc:  # a missing or broken runtime is a row, not a crash
            text = f"unavailable: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        rows.append(Runtime(name, version, text))
    return rows
