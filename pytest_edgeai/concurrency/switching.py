"""Model-switch overhead: what alternating between models costs over running each alone.

On an EdgeTPU, separately compiled models each claim the 8 MiB parameter cache, so switching
reloads parameters over USB/PCIe; models compiled together (edgetpu_compiler a.tflite b.tflite)
share the cache and switch cheaply (Coral's co-compilation; Liang et al. see the swap cost). The
measurement itself works on any Session, so it is the same code on every device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import get_backend

if TYPE_CHECKING:
    from ..backends.base import Session
    from ..devices import Device
    from ..models.model import Model


@dataclass
class SwitchResult:
    """Median latency of each model alone and when alternating; the difference is the switch cost."""

    label: str
    alone_ms: dict[str, float]
    alternating_ms: dict[str, float]
    rounds: int

    @property
    def overhead_ms(self) -> dict[str, float]:
        return {m: self.alternating_ms[m] - self.alone_ms[m] for m in self.alone_ms}

    @property
    def mean_overhead_ms(self) -> float:
        return float(np.mean(list(self.overhead_ms.values())))

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "alone_ms": self.alone_ms, "alternating_ms": self.alternating_ms,
                "overhead_ms": self.overhead_ms, "mean_overhead_ms": self.mean_overhead_ms, "rounds": self.rounds}


def measure_switching(sessions: dict[str, Session], feeds: dict[str, dict[str, np.ndarray]], rounds: int,
                      label: str = "", clock: Callable[[], int] = time.monotonic_ns) -> SwitchResult:
    """Each model ``rounds`` times back to back, then all of them in turn ``rounds`` times."""
    if len(sessions) < 2:
        raise ValueError("switching needs at least two models")

    def timed(name: str) -> int:
        t0 = clock()
        sessions[name].run(feeds[name])
        return clock() - t0

    for name in sessions:  # first inference (and any first swap-in) excluded
        timed(name)
    alone = {name: float(np.median([timed(name) for _ in range(rounds)])) / 1e6 for name in sessions}
    turns: dict[str, list[int]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name in sessions:
            turns[name].append(timed(name))
    alternating = {name: float(np.median(v)) / 1e6 for name, v in turns.items()}
    return SwitchResult(label, alone, alternating, rounds)


def switching_study(models: list[Model], device: Device, rounds: int, label: str = "",
                    together: bool = False) -> SwitchResult:
    """Load every model on ``device`` (one session each, as tenants of one TPU), time the switching,
    close them all. ``together``: the backend loads them as one group (LiteRT co-compiles them for the
    EdgeTPU, so they share its parameter cache)."""
    from .tenants import backend_load, default_feeds

    sessions: dict[str, Session] = {}
    try:
        backend = get_backend(device.backend)
        if together and hasattr(backend, "load_together"):
            sessions.update(zip([m.name for m in models], backend.load_together(models, device)))
        else:
            for model in models:
                sessions[model.name] = backend_load(model, device)
        feeds = {m.name: default_feeds(sessions[m.name], m) for m in models}
        return measure_switching(sessions, feeds, rounds, label=label)
    finally:
        for session in sessions.values():
            session.close()
