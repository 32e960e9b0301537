"""Where measurements run: the Runner protocol and its two strategies (isolated worker, in-process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..errors import ConfigError
from ..measure.scenarios import ProgressCallback
from .execute import CallRequest, CallResult, MeasureRequest, MeasureResult

LOCK_WAIT_FACTOR = 4  # a device lock held longer than this many time limits is held by something stuck

# on_event(name, args): a study's callback ``name`` was called with ``args`` (see execute.CallRequest)
EventCallback = Callable[[str, tuple[Any, ...]], None]


class Runner(Protocol):
    isolated: bool

    def measure(self, request: MeasureRequest, timeout_s: float,
                progress: ProgressCallback | None = None) -> MeasureResult: ...

    def call(self, request: CallRequest, timeout_s: float, on_event: EventCallback) -> CallResult: ...

    def release(self, device_name: str) -> None:
        """Free what is held for a device nothing more will run on."""
        ...

    def close(self) -> None: ...


def make_runner(isolated: bool) -> Runner:
    if isolated:
        from .isolation import IsolatedRunner

        return IsolatedRunner()
    from .inprocess import InProcessRunner

    return InProcessRunner()


MAX_TIMEOUT_S = 7 * 24 * 3600.0


def parse_timeout(value: object, default: float) -> float:
    """--edgeai-timeout: seconds a measurement (load + measure) may take before it counts as a hang."""
    if value in (None, ""):
        return float(default)
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= MAX_TIMEOUT_S:  # inf or 1e400 would overflow every wait on it
        raise ConfigError([f"--edgeai-timeout {value}: give a positive number of seconds up to "
                           f"{MAX_TIMEOUT_S:g} (a week), e.g. 120"])
    return seconds
