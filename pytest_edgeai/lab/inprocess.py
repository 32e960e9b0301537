"""--edgeai-no-isolation: measure in the pytest process itself, for debugging a backend with pdb.

No protection: a native crash takes pytest down, and a hang is not cut off (a thread cannot be killed).
"""

from __future__ import annotations

from typing import Any

from ..measure.scenarios import ProgressCallback
from .execute import CallRequest, CallResult, MeasureRequest, MeasureResult, ModelCache, call, execute
from .runner import EventCallback


class InProcessRunner:
    isolated = False

    def __init__(self) -> None:
        self._caches: dict[str, ModelCache] = {}

    def measure(self, request: MeasureRequest, timeout_s: float,
                progress: ProgressCallback | None = None) -> MeasureResult:
        return execute(request, self._cache(request.device.name), progress=progress)

    def call(self, request: CallRequest, timeout_s: float, on_event: EventCallback) -> CallResult:
        return call_here(request, self._cache(request.device.name), on_event)

    def _cache(self, name: str) -> ModelCache:
        return self._caches.setdefault(name, ModelCache())

    def release(self, device_name: str) -> None:
        cache = self._caches.pop(device_name, None)
        if cache is not None:
            cache.close()

    def close(self) -> None:
        while self._caches:
            self._caches.popitem()[1].close()


def call_here(request: CallRequest, cache: ModelCache, on_event: EventCallback) -> CallResult:
    """A study in this process, its callbacks called directly."""
    return call(request, cache, lambda event, value: on_event(*value) if event == "event" else None)
