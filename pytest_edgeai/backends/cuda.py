"""CUDA runtime calls through cuda-python, with errors a person can act on.

cuda-python returns ``(error, value...)`` tuples instead of raising; :func:`call` unpacks them.
The runtime module is ``cuda.bindings.runtime`` since cuda-python 12.6; ``cuda.cudart`` was a
trampoline to it in 12.x and is removed in 13.0 (cuda-bindings 13.0.0 release notes), so the new
name is tried first. 13.0 also deprecates ``int(cuda_obj)`` for a handle: :func:`handle` uses
``cuda.bindings.utils.get_cuda_native_handle`` where it exists.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import BackendError


def cudart() -> Any:
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BackendError("cuda-python is not importable: pip install cuda-python (the major of the CUDA the "
                       "runtime was built for; in the [tensorrt], [ort-gpu] and [jetson] extras)")


def handle(obj: Any) -> int:
    """The native handle (an address) of a cuda-python object such as a stream, as TensorRT takes it."""
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:  # cuda-python 12.x before the utility module
        return int(obj)
    return int(get_cuda_native_handle(obj))


def call(rt: Any, fn: str, *args: Any) -> Any:
    """rt.fn(*args) with its error code checked; the value(s) it returns otherwise."""
    result = getattr(rt, fn)(*args)
    if not isinstance(result, tuple):
        result = (result,)
    err, values = result[0], result[1:]
    if int(err) != int(rt.cudaError_t.cudaSuccess):
        name = rt.cudaGetErrorName(err)[1] if hasattr(rt, "cudaGetErrorName") else err
        raise BackendError(f"CUDA {fn} failed: {name.decode() if isinstance(name, bytes) else name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def device_identity(rt: Any, device_id: int) -> dict[str, Any]:
    """Name and compute capability: what makes a TensorRT engine valid on a GPU."""
    props = call(rt, "cudaGetDeviceProperties", device_id)
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return {"gpu": name.rstrip("\x00"), "compute_capability": f"{props.major}.{props.minor}",
            "memory_mb": round(props.totalGlobalMem / 2**20)}


def runtime_versions(rt: Any) -> dict[str, str]:
    def fmt(v: int) -> str:
        return f"{v // 1000}.{v % 1000 // 10}"

    return {"cuda_driver": fmt(call(rt, "cudaDriverGetVersion")),
            "cuda_runtime": fmt(call(rt, "cudaRuntimeGetVersion"))}
