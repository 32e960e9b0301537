"""The reference model zoo: deterministic ONNX builders for the edge-AI workloads."""

from ..errors import UnknownModelError
from .zoo import (
    ZOO,
    Builder,
    build,
    cache_key,
    cached_path,
    default_cache_dir,
    parameter_count,
)

__all__ = [
    "ZOO", "Builder", "UnknownModelError", "build", "cache_key", "cached_path",
    "default_cache_dir", "parameter_count",
]
