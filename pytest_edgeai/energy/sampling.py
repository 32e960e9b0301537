"""The sampling thread, the base every built-in meter builds on, and reading sysfs and procfs under a
configurable root (so tests point every reader at a fake tree).

A meter either polls its sensor at ``rate_hz`` (sysfs files, NVML, a command run per sample)
or reads a stream that paces itself (tegrastats, a serial meter, a long-running command).
The thread is a daemon, waits on a stop event, is joined with a timeout and is always stopped
in ``stop``'s ``finally``, also when the sensor read raised: a meter never outlives its window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import MeterError
from .reading import EnergyReading, IdleBaseline, SampleKind, SensorInfo, build_reading

JOIN_TIMEOUT_S = 2.0


class Sampler:
    """A daemon thread appending ``(t_s, value)`` from ``read`` until told to stop.

    ``period_s`` None means ``read`` blocks until its next value (a stream). ``interrupt``
    unblocks such a read (closes the stream) when stopping. A read that raises ends the
    thread; the error is kept for ``stop`` to report.
    """

    def __init__(self, read: Callable[[], float | None], period_s: float | None, t0: float,
                 interrupt: Callable[[], None] | None = None, name: str = "edgeai-meter"):
        self.samples: list[tuple[float, float]] = []
        self.error: BaseException | None = None
        self._read = read
        self._period = period_s
        self._t0 = t0
        self._interrupt = interrupt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        clock = time.perf_counter
        tick = 0
        try:
            while True:
                if self._period is not None:
                    tick += 1
                    delay = self._t0 + tick * self._period - clock()
                    if self._stop.wait(max(delay, 0.0)):
                        return
                elif self._stop.is_set():
                    return
                value = self._read()
                if value is not None and not self._stop.is_set():
                    self.samples.append((clock() - self._t0, value))
        except BaseException as exc:  # noqa: BLE001 - handed to stop(), which raises MeterError
            if not self._stop.is_set():
                self.error = exc

    def stop(self) -> bool:
        """Stop and join; False when the thread did not finish within the timeout."""
        self._stop.set()
        try:
            if self._interrupt is not None:
                self._interrupt()
        finally:
            if self._thread.ident is not None:
                self._thread.join(JOIN_TIMEOUT_S)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class SampledMeter:
    """Base of the built-in meters: subclasses say what they read, this runs the window.

    Subclasses set ``kind``, ``polled`` and ``info`` and implement ``_read``; a stream meter
    also implements ``_begin`` (open the stream) and ``_end`` (close it, unblocking a read).
    Polled meters are read once synchronously at start and at stop, so the window's edges
    are exact; in between the thread reads every ``1 / rate_hz`` seconds (no thread at rate 0).
    """

    kind: SampleKind = "watts"
    polled: bool = True
    info: SensorInfo

    def __init__(self, rate_hz: float = 10.0):
        self.rate_hz = rate_hz
        self.baseline: IdleBaseline | None = None
        self._sampler: Sampler | None = None
        self._t0 = 0.0
        self._edges: list[tuple[float, float]] = []

    def _read(self) -> float | None:
        raise NotImplementedError

    def _begin(self) -> None:
        """Open what a stream meter reads from (a process, a port)."""

    def _interrupt(self) -> None:
        """Unblock a stream's pending ``_read`` (end its process); called before the join."""

    def _end(self) -> None:
        """Close what ``_begin`` opened; called after the thread was joined, and must be idempotent."""

    def _warnings(self) -> list[str]:
        """Caveats of this sensor that hold for every reading."""
        return []

    def _where(self) -> str:
        return self.info.source

    def _no_sample_hint(self) -> str:
        """What to add when no value arrived in a window."""
        return ""

    def start(self) -> None:
        if self._sampler is not None:
            raise MeterError(f"{self._where()}: start() called twice without stop()")
        self._edges = []
        self._begin()
        self._t0 = time.perf_counter()
        try:
            if self.polled:
                self._edges.append((0.0, self._checked_read()))
            period = (1.0 / self.rate_hz if self.rate_hz > 0 else None) if self.polled else None
            self._sampler = Sampler(self._read, period, self._t0, interrupt=None if self.polled else self._interrupt)
            if period is not None or not self.polled:  # rate 0: a polled meter reads only at the edges
                self._sampler.start()
        except BaseException:
            self._end()
            self._sampler = None
            raise

    def stop(self) -> EnergyReading:
        sampler, self._sampler = self._sampler, None
        if sampler is None:
            raise MeterError(f"{self._where()}: stop() called without start()")
        try:
            joined = sampler.stop()
        finally:
            self._end()
        if sampler.error is not None:
            err = sampler.error
            raise MeterError(f"{self._where()}: reading the sensor failed during the window: "
                             f"{type(err).__name__}: {err}") from err
        duration = time.perf_counter() - self._t0
        samples = list(sampler.samples)
        if self.polled:
            samples = self._edges + samples + [(duration, self._checked_read())]
        samples = [s for s in samples if s[0] <= duration]
        if not samples:
            raise MeterError(f"{self._where()}: no reading arrived during the {duration:.3g} s window"
                             f"{self._no_sample_hint()}")
        warnings = self._warnings()
        if self.polled and self.kind == "watts" and self.rate_hz == 0:
            warnings.append("rate_hz = 0: power was read only at the start and stop of the window")
        if not joined:
            warnings.append(f"the sampling thread did not stop within {JOIN_TIMEOUT_S:g} s "
                            f"(a sensor read hangs); it was left as a daemon thread")
        reading = build_reading(samples, self.kind, duration, self.info, warnings)
        return reading.with_baseline(self.baseline) if self.baseline is not None else reading

    def _checked_read(self) -> float:
        try:
            value = self._read()
        except MeterError:
            raise
        except Exception as exc:
            raise MeterError(f"{self._where()}: reading the sensor failed: {type(exc).__name__}: {exc}") from exc
        if value is None:
            raise MeterError(f"{self._where()}: the sensor gave no value")
        return value

    def close(self) -> None:
        if self._sampler is not None:
            sampler, self._sampler = self._sampler, None
            try:
                sampler.stop()
            finally:
                self._end()


def under(root: str, path: str) -> Path:
    """``path`` (absolute, as on the live system) inside ``root``."""
    return Path(root) / path.lstrip("/")


def read_text(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace").strip()


def read_number(path: Path) -> float:
    """A sysfs file holding one number; ValueError naming the file when it holds something else."""
    text = read_text(path)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path} holds {text[:40]!r}, not a number") from None
