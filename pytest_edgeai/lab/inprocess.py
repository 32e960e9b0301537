"""--edgeai-no-isolation: measure in the pytest process itself, for debugging a backend with pdb.

No protection: a native crash takes pytest down, and a hang is not cut off (a thread cannot be killed).
"""

from __future__ import annotations

from ..measure.scenarios import ProgressCallback
from .execute import MeasureRequest, MeasureResult, ModelCache, execute


class InProcessRunner:
    isolated = False

    def __init__(self) -> None:
        self._caches: dict[str, ModelCache] = {}

    def measure(self, request: MeasureRequest, timeout_s: float,
                progress: ProgressCallback | None = None) -> MeasureResult:
        cache = self._caches.setdefault(request.device.name, ModelCache())
        return execute(request, cache, progress=progress)

    def close(self) -> None:
        while self._caches:
            self._caches.popitem()[1].close()
