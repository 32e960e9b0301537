"""onnxruntime's GPU execution providers (CUDA, TensorRT): why one is missing, and whether it took.

onnxruntime lists the CUDA provider whenever onnxruntime-gpu is installed, yet falls back to
the CPU with only a log line when CUDA or cuDNN libraries are missing at session creation. A
result measured that way would be labelled GPU and be a CPU figure, so a load checks which
providers the session actually got.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError, did_you_mean

if TYPE_CHECKING:
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
