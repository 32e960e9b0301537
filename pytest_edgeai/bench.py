"""Bench: what the ``edgeai_bench`` fixture hands a suite.

It loads a model on the test's device, runs a scenario, and writes a record the moment the
measurement ends, so nothing measured is lost if a claim fails or the session dies later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .backends.base import get_backend
from .errors import EdgeAIError
from .lab.execute import MeasureRequest, MeasureResult, ModelCache, RuntimeFailure, execute
from .measure.scenarios import ProgressCallback
from .results.record import Record

if TYPE_CHECKING:
    from .backends.base import Session
    from .devices import Device
    from .measure.profiles import Profile
    from .models.model import Model


class Bench:
    """Measures models on one device for one test, recording each result."""

    def __init__(self, device: Device, suite: str, test_id: str, profile: Profile,
                 save: Callable[[Record], Any], availability: dict[str, Any] | None = None,
                 progress: Callable[[str], ProgressCallback | None] | None = None,
                 measure: Callable[[MeasureRequest, ProgressCallback | None], MeasureResult] | None = None,
                 lock_timeout_s: float = -1):
        self.device = device
        self.suite = suite
        self.test_id = test_id
        self.profile = profile
        self._save = save
        self._availability = availability or {}
        self._progress = progress
        self._sessions: dict[str, Session] = {}
        self._cache: ModelCache | None = None
        self._measure = measure or self._measure_here
        self._lock_timeout_s = lock_timeout_s
        self.records: list[Record] = []

    def load(self, model: Model) -> Session:
        """The model loaded on this device, once per test."""
        key = str(model.path)
        if key not in self._sessions:
            self._sessions[key] = get_backend(self.device.backend).load(model, self.device)
        return self._sessions[key]

    @contextmanager
    def exclusive(self) -> Iterator[float]:
        """Hold the device's lock while a suite times work of its own (tenants, LoadGen, a split run),
        so no other measurement on the same physical device overlaps it; yields the seconds waited.
        Measure nothing through ``offline``/``single_stream`` inside: those take the lock themselves."""
        from .lab.locks import device_lock

        with device_lock(self.device, None, self._lock_timeout_s) as waited:
            yield waited

    def single_stream(self, model: Model, metered: bool = False) -> Record:
        return self.run(model, "single_stream", 1, metered)

    def offline(self, model: Model, batch: int = 1, metered: bool = False) -> Record:
        """Offline throughput; ``metered`` reads the device's power meter over the timed loop."""
        return self.run(model, "offline", batch, metered)

    def run(self, model: Model, scenario: str, batch: int, metered: bool = False) -> Record:
        """Measure one scenario (load + measure run where the session says: an isolated worker by
        default); an error is recorded too, then raised with its message."""
        record = self.new_record(model, {"name": scenario, "batch": batch, "profile": self.profile.to_dict()})
        request = MeasureRequest(self.device, model, scenario, batch, self.profile, metered=metered)
        label = f"{self.device.name} {model.name} {scenario} b{batch}"
        try:
            result = self._measure(request, self._progress(label) if self._progress else None)
        except RuntimeFailure as exc:  # a runtime failing mid-run: keep the record, say what happened
            self.fail_record(record, exc.detail)
            raise EdgeAIError(f"{request.label}: the runtime failed: {exc.detail}") from exc
        except EdgeAIError as exc:
            self.fail_record(record, str(exc))
            raise
        record.backend["settings"] = result.settings
        record.metrics.update(result.metrics)
        record.samples["latency_ns"] = result.samples_ns
        record.warnings.extend(result.warnings)
        record.extra.update(result.extra)
        if metered:
            from .energy.metrics import record_energy

            queries = len(result.samples_ns)
            record_energy(record, result.energy, result.energy_reason, inferences=queries * batch,
                          throughput_ips=record.metric("throughput_ips"), price_usd=self.device.price_usd,
                          queries=queries)
        self.save(record)
        return record

    def _measure_here(self, request: MeasureRequest, progress: ProgressCallback | None) -> MeasureResult:
        """Without a session's runner: measure in this process, the model kept loaded for the bench."""
        self._cache = self._cache or ModelCache()
        return execute(request, self._cache, progress=progress)

    def new_record(self, model: Model | None, scenario: dict[str, Any]) -> Record:
        backend = {"name": self.device.backend, **{k: self._availability.get(k) for k in
                                                   ("runtime", "runtime_version") if k in self._availability}}
        return Record(suite=self.suite, test_id=self.test_id, device=self.device.describe(),
                      backend=backend, model=model.describe() if model else {}, scenario=scenario)

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
        if self._cache is not None:
            self._cache.close()
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()
