"""Bench: what the ``edgeai_bench`` fixture hands a suite.

It measures a model on the test's device, or runs a suite's own study there, where the session
says (an isolated worker by default: the pytest process loads no model), and writes a record
the moment a measurement ends, so nothing measured is lost if a claim fails or the session dies later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from .canary import FIELD as CANARY_FIELD
from .energy import record_energy
from .errors import EdgeAIError, RuntimeFailure
from .lab.locks import device_lock
from .lab.runners import InProcessRunner, Runner
from .lab.work import CallRequest, CallResult, MeasureRequest
from .measure.scenarios import ProgressCallback
from .models.model import Model
from .results.record import Record

if TYPE_CHECKING:
    from .devices import Device
    from .measure.profiles import Profile


class Bench:
    """Measures models on one device for one test, recording each result."""

    def __init__(self, device: Device, suite: str, test_id: str, profile: Profile,
                 save: Callable[[Record], Any], availability: dict[str, Any] | None = None,
                 progress: Callable[[str], ProgressCallback | None] | None = None,
                 lab: Runner | None = None, lock_timeout_s: float = -1):
        self.device = device
        self.suite = suite
        self.test_id = test_id
        self.profile = profile
        self._save = save
        self._availability = availability or {}
        self._progress = progress
        # where the work runs: the session's runner, or, without a session (a suite's pieces under test),
        # this process, unprotected
        self._lab: Runner = lab if lab is not None else InProcessRunner()
        self._own_lab = None if lab is not None else self._lab
        self._lock_timeout_s = lock_timeout_s
        self._last_study: CallResult | None = None  # its clocks go into the records made from it
        self.records: list[Record] = []

    def beside(self, device: Device, availability: dict[str, Any]) -> Bench:
        """A bench on another device for the same test, through the same lab: the other arm of a
        ratio measured side by side. Closing it leaves this bench's lab open."""
        return Bench(device, self.suite, self.test_id, self.profile, save=self._save, availability=availability,
                     progress=self._progress, lab=self._lab, lock_timeout_s=self._lock_timeout_s)

    def call(self, fn: Callable[..., Any], *args: Any, events: dict[str, Callable[..., Any]] | None = None,
             exclusive: bool = True, also_lock: Sequence[Device] = (), about: Model | None = None,
             **kwargs: Any) -> Any:
        """A suite's study, ``fn(*args, **kwargs)``, run where measurements run (an isolated worker by
        default), so a runtime that crashes or hangs in it fails this test and not the session.
        ``fn`` is a module-level function loading its own sessions; ``events`` are callbacks (``on_step``)
        it is given, called here as it calls them there, so each step is recorded as it ends.
        ``exclusive`` (a study that times the device) holds the device's lock for the duration and reads
        its clocks around it, as a measurement does, and holds the locks of the ``also_lock`` devices
        when the study times work on them too; without it the model the worker keeps loaded stays.
        ``about`` names the model a study of a file (a path) is about, for the record a failure leaves."""
        handlers = events or {}
        request = CallRequest(self.device, fn, args, kwargs, tuple(handlers), exclusive, tuple(also_lock))
        self._last_study = None
        try:
            result = self._lab.call(request, lambda name, values: handlers[name](*values))
        except EdgeAIError as exc:  # the run shows the study failed, and why, as it shows a measurement
            model = about or next((a for a in args if isinstance(a, Model)), None)
            detail = exc.detail if isinstance(exc, RuntimeFailure) else str(exc)
            self.fail_record(self.new_record(model, {"name": getattr(fn, "__name__", "study")}), detail)
            if isinstance(exc, RuntimeFailure):
                raise EdgeAIError(f"{request.label}: the runtime failed: {exc.detail}") from exc
            raise
        self._last_study = result
        return result.value

    @contextmanager
    def exclusive(self) -> Iterator[float]:
        """Hold the device's lock while a suite times work in processes of its own (a split run), so
        no other measurement on the same physical device overlaps it; yields the seconds waited.
        Measure nothing through ``offline``/``single_stream``/``call`` inside: those take the lock themselves."""
        with device_lock(self.device, None, self._lock_timeout_s) as waited:
            yield waited

    def single_stream(self, model: Model, metered: bool = False, profile: Profile | None = None,
                      **scenario: Any) -> Record:
        return self.run(model, "single_stream", 1, metered, profile, **scenario)

    def offline(self, model: Model, batch: int = 1, metered: bool = False, profile: Profile | None = None,
                **scenario: Any) -> Record:
        """Offline throughput; ``metered`` reads the device's power meter over the timed loop."""
        return self.run(model, "offline", batch, metered, profile, **scenario)

    def run(self, model: Model, scenario: str, batch: int, metered: bool = False, profile: Profile | None = None,
            **params: Any) -> Record:
        """Measure one scenario (load + measure run where the session says: an isolated worker by
        default); an error is recorded too, then raised with its message. ``profile`` overrides the
        bench's (one round's window); ``params`` go into the scenario (``round=2``)."""
        self._last_study = None  # a measurement carries its own clocks
        profile = profile or self.profile
        record = self.new_record(model, {"name": scenario, "batch": batch, "profile": profile.to_dict(), **params})
        request = MeasureRequest(self.device, model, scenario, batch, profile, metered=metered)
        label = f"{self.device.name} {model.name} {scenario} b{batch}"
        try:
            result = self._lab.measure(request, self._progress(label) if self._progress else None)
        except RuntimeFailure as exc:  # a runtime failing mid-run: keep the record, say what happened
            self.fail_record(record, exc.detail)
            raise EdgeAIError(f"{request.label}: the runtime failed: {exc.detail}") from exc
        except EdgeAIError as exc:
            self.fail_record(record, str(exc))
            raise
        record.backend["settings"] = result.settings
        record.metrics.update(result.metrics)
        record.samples["latency_ns"] = cast("list[float]", result.samples_ns)  # ints are numbers the record keeps
        record.warnings.extend(result.warnings)
        record.extra.update(result.extra)
        if result.canary is not None:
            record.extra[CANARY_FIELD] = result.canary
        if metered:
            queries = len(result.samples_ns)
            record_energy(record, result.energy, result.energy_reason, inferences=queries * batch,
                          throughput_ips=float(result.metrics["throughput_ips"]["value"]),
                          price_usd=self.device.price_usd, queries=queries)
        self.save(record)
        return record

    def new_record(self, model: Model | None, scenario: dict[str, Any]) -> Record:
        backend: dict[str, Any] = {"name": self.device.backend, **{k: self._availability.get(k) for k in
                                                   ("runtime", "runtime_version") if k in self._availability}}
        record = Record(suite=self.suite, test_id=self.test_id, device=self.device.describe(),
                        backend=backend, model=model.describe() if model else {}, scenario=scenario)
        study = self._last_study
        if study is not None and study.clocks:  # made from a timed study: the clocks around it, as for a measurement
            record.extra["clocks"] = study.clocks
            if study.throttled:
                record.extra["throttled"] = True
                record.warnings.extend(f"throttled: {t}" for t in study.throttled)
            record.warnings.extend(study.reclaimed)
        return record

    def derived(self, model: Model | None, name: str, metrics: dict[str, dict[str, Any]],
                inputs: list[Record], **scenario: Any) -> Record:
        """A result computed from other records (a speed-up, a ratio), naming its inputs."""
        record = self.new_record(model, {"name": name, **scenario})
        record.metrics.update(metrics)
        record.extra["derived_from"] = [r.id for r in inputs]
        self.save(record)
        return record

    def fail_record(self, record: Record, message: str) -> None:
        record.status = "error"
        record.error = message
        self.save(record)

    def save(self, record: Record) -> None:
        if all(r.id != record.id for r in self.records):
            self.records.append(record)
        self._save(record)

    def close(self) -> None:
        if self._own_lab is not None:
            self._own_lab.close()
