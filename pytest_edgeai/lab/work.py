"""One measurement, exactly as it runs wherever it runs: in an isolated worker or in the pytest process.

Lock the device, load the model (kept loaded for the next request of the same model), read the clocks,
run ``measure.scenarios.measure`` unchanged between two readings of the canary (pytest_edgeai.canary,
loaded once per worker and device, kept loaded beside the model), read the clocks again. The result
carries plain data only, so it crosses a process boundary as it is.

A suite's own study (a tenant sweep, LoadGen, per-block profiling) runs the same way through
:func:`call`: a module-level function called under the device's lock, its callbacks relayed back.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.asynchronous import AsyncSession
from ..backends.base import get_backend
from ..canary import CanaryReader, bracket
from ..energy import EnergyReading, MeterWindow
from ..errors import EdgeAIError, RuntimeFailure
from ..measure.asynchronous import measure_async
from ..measure.inputs import make_feeds
from ..measure.scenarios import ProgressCallback, measure
from . import clocks
from .locks import device_lock, device_locks

if TYPE_CHECKING:
    import numpy as np

    from ..backends.base import Session
    from ..devices import Device
    from ..measure.profiles import Profile
    from ..measure.scenarios import Measurement
    from ..models.model import Model


@dataclass(frozen=True)
class MeasureRequest:
    device: Device
    model: Model
    scenario: str
    batch: int
    profile: Profile
    lock_dir: str | None = None
    lock_timeout_s: float = -1  # -1: wait as long as it takes
    metered: bool = False  # read the device's power meter over exactly the timed loop
    timeout_s: float | None = None  # from getting the device to the result; past it, a hang (None: no limit)
    canary: Model | None = None  # the canary to read right before and after the timed window (None: none)

    @property
    def label(self) -> str:
        return f"{self.device.name}/{self.model.name} {self.scenario} b{self.batch}"


@dataclass
class MeasureResult:
    """What the record needs from a measurement."""

    metrics: dict[str, dict[str, Any]]
    samples_ns: list[int]
    warnings: list[str]
    started_at: float
    wall_ns: int
    settings: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    energy: EnergyReading | None = None
    energy_reason: str | None = None  # why there is no energy reading, when metered
    canary: dict[str, Any] | None = None  # the record's extra.canary (canary.entry), or why there is none


class ModelCache:
    """The model most recently loaded on the device, kept loaded: a suite's tests use one model in turn;
    and the canary, loaded once (or why it cannot be) and kept until the worker ends (``close_all``)."""

    def __init__(self) -> None:
        self.key: tuple[str, str] | None = None
        self.session: Session | None = None
        self.canaries: dict[tuple[str, str], CanaryReader | str] = {}

    def canary(self, device: Device, model: Model) -> CanaryReader | str:
        """The canary loaded on ``device`` through its backend, or why it cannot run there."""
        key = (device.name, str(model.path))
        if key not in self.canaries:
            try:
                self.canaries[key] = CanaryReader(get_backend(device.backend).load(model, device))
            except Exception as exc:  # any runtime's refusal: the measurement goes on without a canary
                self.canaries[key] = f"the canary cannot run on {device.name}: {type(exc).__name__}: {exc}"
        return self.canaries[key]

    def get(self, device: Device, model: Model) -> tuple[Session, float | None]:
        """The loaded session and the seconds loading took (None when it was already loaded)."""
        key = (device.name, str(model.path))
        if self.key == key and self.session is not None:
            return self.session, None
        self.close()
        t0 = time.perf_counter()
        self.session = get_backend(device.backend).load(model, device)
        self.key = key
        return self.session, time.perf_counter() - t0

    def close(self) -> None:
        """Unload the model (the canary is small and stays)."""
        session, self.session, self.key = self.session, None, None
        if session is not None:
            session.close()

    def close_all(self) -> None:
        self.close()
        readers, self.canaries = self.canaries, {}
        for reader in readers.values():
            if isinstance(reader, CanaryReader):
                reader.close()


Notify = Callable[[str, Any], None]


@dataclass(frozen=True)
class CallRequest:
    """A suite's study on a device: ``fn(*args, **kwargs)``, with the keyword arguments named in
    ``events`` given callbacks that relay their arguments to the caller (``notify("event", (name, args))``).
    ``fn`` is a module-level function and every argument plain data, so the request pickles."""

    device: Device
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    events: tuple[str, ...] = ()
    exclusive: bool = True  # hold the device's lock: the study times work on the device
    also_lock: tuple[Device, ...] = ()  # other devices the study times work on (placement), when exclusive
    lock_dir: str | None = None
    lock_timeout_s: float = -1
    timeout_s: float | None = None  # the longest the study may go without relaying an event (None: no limit)

    @property
    def label(self) -> str:
        return f"{self.device.name}: {getattr(self.fn, '__qualname__', self.fn)}"


@dataclass
class CallResult:
    """What the study returned, and, for a study that times the device, the clocks around it (a long
    sweep is where a device heats up)."""

    value: Any
    clocks: dict[str, Any] = field(default_factory=dict)  # {"before": snapshot, "after": snapshot}
    throttled: list[str] = field(default_factory=list)
    reclaimed: list[str] = field(default_factory=list)  # the device's lock, taken from an orphaned holder


def call(request: CallRequest, cache: ModelCache, notify: Notify | None = None) -> CallResult:
    """Run a study where a measurement would run; a vendor exception becomes a :class:`RuntimeFailure`."""
    tell = notify or (lambda event, value: None)
    kwargs = dict(request.kwargs)
    for name in request.events:
        kwargs[name] = _relay(tell, name)
    reclaimed: list[str] = []
    lock = (device_locks((request.device, *request.also_lock), Path(request.lock_dir) if request.lock_dir else None,
                         request.lock_timeout_s, reclaimed.append) if request.exclusive else nullcontext(0.0))
    with lock as waited:
        tell("locked", waited)
        timed = request.exclusive  # a study that times the device; a probe, a build or a bytes study does not
        if timed:
            cache.close()  # the study loads what it needs; a model kept loaded would take memory from it
        tell("phase", request.label)
        before = clocks.snapshot(request.device) if timed else None
        try:
            value = request.fn(*request.args, **kwargs)
            if before is None:
                return CallResult(value)
            after = clocks.snapshot(request.device)
            return CallResult(value, {"before": before, "after": after},
                              clocks.throttling(request.device, before, after), reclaimed)
        except EdgeAIError:
            raise
        except Exception as exc:  # where it was raised, since a worker's traceback does not come back
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raise RuntimeFailure(f"{type(exc).__name__}: {exc} (at {Path(frame.filename).name}:{frame.lineno} "
                                 f"in {frame.name})") from exc


def _relay(tell: Notify, name: str) -> Callable[..., None]:
    def relay(*args: Any) -> None:
        tell("event", (name, args))

    return relay


def execute(request: MeasureRequest, cache: ModelCache, notify: Notify | None = None,
            progress: ProgressCallback | None = None) -> MeasureResult:
    """Lock, load, measure. ``notify("locked", wait_s)`` once the device is ours (a time limit starts
    there), then ``notify("phase", what)`` as it goes, so a crash can say where it happened."""
    device = request.device
    tell = notify or (lambda event, value: None)
    lock_dir = Path(request.lock_dir) if request.lock_dir else None
    reclaimed: list[str] = []
    with device_lock(device, lock_dir, request.lock_timeout_s, reclaimed.append) as waited:
        tell("locked", waited)
        window = MeterWindow.for_device(device) if request.metered else None
        try:
            tell("phase", "loading the model")
            session, load_s = cache.get(device, request.model)
            feeds = make_feeds(session.inputs, request.batch, overrides=request.model.params.get("input_shapes"))
            tell("phase", "the measurement")  # the idle baseline is read inside, after the warm-up
            reader = cache.canary(device, request.canary) if request.canary is not None else None
            before = clocks.snapshot(device)
            result, canary = bracket(reader, lambda: _run_scenario(session, feeds, request, progress, window))
            after = clocks.snapshot(device)
            settings = session.settings()
            timings = session.timings(len(result.samples_ns)) if hasattr(session, "timings") else None
        except EdgeAIError:
            cache.close()
            raise
        except Exception as exc:  # a vendor runtime's own exception: name it, keep it one line
            cache.close()
            raise RuntimeFailure(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if window is not None:
                window.close()
    throttled = clocks.throttling(device, before, after)
    extra: dict[str, Any] = {"started_at": result.started_at, "wall_s": result.wall_ns / 1e9,
                             "lock_wait_s": waited, "model_load_s": load_s,
                             "clocks": {"before": before, "after": after}}
    if throttled:
        extra["throttled"] = True
    if timings:
        extra["gpu_timings_ms"] = timings  # TensorRT, per timed query: H2D, compute, D2H (CUDA events), host
    return MeasureResult(metrics=result.metrics(), samples_ns=result.samples_ns,
                         warnings=[*reclaimed, *result.warnings, *(f"throttled: {t}" for t in throttled)],
                         started_at=result.started_at, wall_ns=result.wall_ns, settings=settings, extra=extra,
                         energy=window.reading if window else None, energy_reason=window.reason if window else None,
                         canary=canary)


def _run_scenario(session: Session, feeds: dict[str, np.ndarray], request: MeasureRequest,
                  progress: ProgressCallback | None, window: MeterWindow | None) -> Measurement:
    """The synchronous loop, or the request pool when the runtime was set up for throughput."""
    if request.scenario == "offline" and isinstance(session, AsyncSession) and session.prefers_async():
        return measure_async(session, feeds, request.batch, request.profile, progress, window)
    return measure(session, feeds, request.scenario, request.batch, request.profile, progress, window)
