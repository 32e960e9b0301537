"""The state of one pytest-edgeai run (a pytest session using the plugin): config, selected devices,
run store, records. ("Session" elsewhere in the package means a model loaded on a device.)

Plain Python: the plugin creates one in ``pytest_configure`` and its fixtures ask it for
devices, models and benches.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from . import config as config_mod
from .backends.base import Availability, probe
from .canary import NO_CANARY_ENV, canary_model
from .devices import Device
from .errors import ConfigError, DeviceUnavailable, EdgeAIError, ModelError
from .lab import runshare
from .lab.lost import LostDevices
from .lab.runners import (
    LOCK_WAIT_FACTOR,
    PROBE_TIMEOUT_S,
    EventCallback,
    Runner,
    make_runner,
    no_events,
    parse_timeout,
    probe_isolated,
)
from .lab.runshare import RunPlan
from .lab.work import CallRequest, CallResult, MeasureRequest, MeasureResult
from .measure.profiles import Profile, get_profile
from .measure.scenarios import ProgressCallback
from .models.model import Model, model_from_file, resolve_model
from .results import environment
from .results.compare import parse_runs
from .results.record import Record
from .results.store import RUN_FILE, RunStore, TestOutcome, load_run, report_dir_problem
from .selection import select

T = TypeVar("T")


@dataclass
class Settings:
    """The options as resolved from the command line, ini file and defaults."""

    devices: list[str]
    devices_file: Path | None
    profile: str
    report_dir: Path
    strict: bool
    models: list[str]
    batches: list[int]
    cache_dir: Path | None
    rootdir: Path
    values: dict[str, Any] = field(default_factory=dict)  # every option by dest, resolved

    def option(self, dest: str) -> Any:
        """Any option's resolved value (command line, then ini, then default), by its dest."""
        return self.values.get(dest)


@dataclass
class Workload:
    """A model the suites run: a zoo name, a devices.toml [models] entry, or a file."""

    name: str
    ref: str
    params: dict[str, Any] = field(default_factory=dict)


class EdgeAIRun:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.profile: Profile = get_profile(settings.profile)
        self.config = self._load_config()
        self.devices: list[Device] = select(self.config, settings.devices,
                                            None if settings.option("edgeai_no_isolation") else probe_isolated)
        missing = [m for m in settings.models if not Path(m).is_file()]
        if missing:
            raise ConfigError([f"--edgeai-model {m}: no such file" for m in missing])
        if (unusable := report_dir_problem(settings.report_dir)) is not None:
            raise ConfigError([f"--edgeai-report-dir {settings.report_dir}: {unusable}"])
        self._workloads: list[Workload] | None = None
        if self.config.models or settings.models:  # a name clashing with the zoo: a usage error, not at collection
            self._workloads = self._collect_workloads()
        self.store: RunStore | None = None
        self.records: list[Record] = []
        self.outcomes: dict[str, TestOutcome] = {}  # by test id, filled by the plugin's report hook
        self.report_path: Path | None = None
        self._availability: dict[str, Availability] = {}
        self._models: dict[str, Model] = {}
        self._lock = threading.Lock()
        # the lab: isolation, time limit, lost devices, a run shared between xdist workers (see lab/)
        self.timeout_s = parse_timeout(settings.option("edgeai_timeout"), self.profile.timeout_s)
        # checked before anything is measured, not at the session's end
        self.baseline_runs = parse_runs(settings.option("edgeai_baseline_runs"), "--edgeai-baseline-runs")
        self.lost = LostDevices()
        self.shared_run: RunPlan | None = None  # set by the plugin under pytest-xdist
        self.xdist_worker: dict[str, str] | None = None  # {id, host}: records also go to the controller
        self.outbox: list[Record] = []
        self.worker_environments: dict[str, dict[str, Any]] = {}
        self._runner: Runner | None = None
        self._canary: Model | str | None = None  # the canary's model, or why it could not be built (canary.py)

    def _load_config(self) -> config_mod.Config:
        path = self.settings.devices_file
        if path is None:
            default = self.settings.rootdir / "devices.toml"
            return config_mod.load(default) if default.is_file() else config_mod.builtin()
        return config_mod.load(path)

    @property
    def workloads(self) -> list[Workload]:
        """Zoo models, devices.toml [models], then --edgeai-model files; built lazily (imports onnx)."""
        if self._workloads is None:
            self._workloads = self._collect_workloads()
        return self._workloads

    def _collect_workloads(self) -> list[Workload]:
        from .models import zoo

        loads = [Workload(name, name) for name in zoo.ZOO]
        for entry in self.config.models.values():
            loads.append(Workload(entry.name, entry.path or entry.zoo or "", dict(entry.params)))
        loads.extend(Workload(Path(path).stem, path) for path in self.settings.models)
        names = [w.name for w in loads]
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise ConfigError([f"model name used twice: {', '.join(clash)} (rename the file or the [models] entry)"])
        return loads

    def start_run(self, options: dict[str, Any]) -> RunStore:
        """Create the run directory and record the environment before anything is measured."""
        meta = {
            "environment": environment.capture(self.settings.rootdir),
            "options": options,
            "profile": self.profile.to_dict(),
            "devices": [d.describe() for d in self.devices],
            "devices_file": str(self.config.path) if self.config.path else None,
        }
        if self.shared_run is None:
            self.store = RunStore.create(self.settings.report_dir, meta)
        else:
            path = runshare.local_path(self.shared_run, self.settings.report_dir)
            self.store = runshare.open_shared_run(path, self.shared_run.run_id, meta)
        self.lost.attach(self.store.path)
        return self.store

    @property
    def lock_timeout_s(self) -> float:
        """How long a measurement waits for its device before the device counts as lost."""
        return LOCK_WAIT_FACTOR * self.timeout_s

    def measure(self, request: MeasureRequest, progress: ProgressCallback | None = None) -> MeasureResult:
        """Run one measurement where the options say (an isolated worker by default); a device that
        stops answering is marked lost for the rest of the run."""
        request = replace(request, lock_timeout_s=self.lock_timeout_s, timeout_s=self.timeout_s,
                          canary=self.canary_model())
        return self._on_device(request.device, lambda runner: runner.measure(request, progress))

    def canary_model(self) -> Model | None:
        """The canary read beside each measurement (canary.py), built once; None when skipped or unbuildable."""
        if self.settings.option("edgeai_no_canary") or os.environ.get(NO_CANARY_ENV):
            return None
        with self._lock:
            if self._canary is None:
                try:
                    self._canary = canary_model(self.settings.cache_dir)
                except (OSError, EdgeAIError) as exc:
                    self._canary = f"the canary model could not be built: {exc}"  # records carry no canary
        return self._canary if isinstance(self._canary, Model) else None

    def call(self, request: CallRequest, on_event: EventCallback) -> CallResult:
        """Run a suite's study where measurements run (see lab.work.call); same time limit, same
        consequence for a device that stops answering."""
        request = replace(request, lock_timeout_s=self.lock_timeout_s, timeout_s=self.timeout_s)
        return self._on_device(request.device, lambda runner: runner.call(request, on_event))

    def _on_device(self, device: Device, use: Callable[[Runner], T]) -> T:
        if self._runner is None:
            self._runner = make_runner(isolated=not self.settings.option("edgeai_no_isolation"))
        try:
            return use(self._runner)
        except DeviceUnavailable as exc:
            self.lost.mark(device, str(exc))
            raise

    def receive(self, record: Record) -> None:
        """A record measured by an xdist worker, arriving at the controller: write it into the run."""
        if self.store is None:
            self.start_run(self.settings.values)
        self.save(record)

    def rejoin_run(self) -> bool:
        """On the xdist controller: open the shared run if a worker created it; False if none did."""
        if self.shared_run is None or not Path(self.shared_run.path, RUN_FILE).is_file():
            return False
        self.store = RunStore(Path(self.shared_run.path), self.shared_run.run_id)
        self.lost.attach(self.store.path)
        return True

    def run_records(self) -> list[Record]:
        """Every record of the run: read back from the run directory on the xdist controller, where
        a worker that died may have written records no report carried."""
        if self.store is not None and self.shared_run is not None:
            return load_run(self.store.path).records
        return self.records

    def hand_over(self, workeroutput: dict[str, Any]) -> None:
        """On an xdist worker at the end: where this worker ran, for the controller's run.json."""
        if self.store is not None:
            workeroutput[runshare.ENVIRONMENT_OUTPUT_KEY] = environment.capture(self.settings.rootdir)

    def release(self, device_name: str) -> None:
        if self._runner is not None:
            self._runner.release(device_name)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def availability(self, device: Device) -> Availability:
        with self._lock:
            if device.name not in self._availability:
                self._availability[device.name] = self._probe(device)
            return self._availability[device.name]

    def _probe(self, device: Device) -> Availability:
        """Ask the backend whether the device is attached, in the device's isolated worker when isolation
        is on: a vendor's probe (enumerating USB, loading a delegate) can crash or hang as well."""
        if self.settings.option("edgeai_no_isolation"):
            return probe(device)
        # no timing, so no lock
        request = CallRequest(device, probe, (device,), exclusive=False, timeout_s=PROBE_TIMEOUT_S)
        try:
            found: Availability = self._on_device(device, lambda runner: runner.call(request, no_events)).value
        except EdgeAIError as exc:
            return Availability(False, f"probing it in its isolated worker failed: {exc}")
        if not found.attached:
            self.release(device.name)  # nothing will run there: no idle worker for it
        return found

    def model(self, workload: Workload | str) -> Model:
        """Resolve (and build, for zoo models) a workload once per session."""
        if isinstance(workload, str):
            name = Path(workload).stem if Path(workload).suffix else workload
            workload = next((w for w in self.workloads if w.name == workload),
                            None) or Workload(name, self._model_file(workload))
        with self._lock:
            if workload.name not in self._models:
                if Path(workload.ref).suffix and Path(workload.ref).exists():
                    model = model_from_file(workload.ref, name=workload.name)
                    model = replace(model, params=dict(workload.params))
                else:
                    model = resolve_model(workload.ref, self.settings.cache_dir, **{
                        k: v for k, v in workload.params.items() if k != "input_shapes"})
                    if workload.name != model.name:
                        model = replace(model, name=workload.name)
                self._models[workload.name] = model
            return self._models[workload.name]

    def _model_file(self, ref: str) -> str:
        """A model file a test names, read from pytest's rootdir as reports/ and devices.toml are (so a
        suite means the same file wherever pytest is started). A file that is not there is one message
        naming every place looked at; a name without a suffix is left to the zoo's did-you-mean."""
        given = Path(ref).expanduser()
        path = self.settings.rootdir / given  # an absolute path stays itself
        if path.exists():
            return str(path)
        if not given.suffix and len(given.parts) == 1:
            return ref
        looked = [f"{path} (a relative path is read from pytest's rootdir, {self.settings.rootdir})"]
        here = Path.cwd() / given
        if here != path:
            found = ": a file is there; name it from the rootdir, or by its absolute path" if here.exists() else ""
            looked.append(f"{here} (the current directory{found})")
        raise ModelError(f"model file {ref}: not found; looked at " + "; ".join(looked))

    def save(self, record: Record) -> None:
        """Write a record now (atomically) and keep it for the summary and the report."""
        if self.store is None:
            raise EdgeAIError("no run is open: records can only be written during a session")
        if self.xdist_worker is not None:
            record.extra.setdefault("worker", self.xdist_worker)
        self.store.write(record)
        with self._lock:
            if self.xdist_worker is not None:
                self.outbox.append(record)
            known = [i for i, r in enumerate(self.records) if r.id == record.id]
            if known:  # a record rewritten (claims judged) or received again: keep the latest version
                self.records[known[0]] = record
            else:
                self.records.append(record)
