"""MLPerf LoadGen scenarios (SingleStream, MultiStream, Server, Offline) over any Session, and a scenario as
one study on a device (load, calibrate, run or search, close).

LoadGen (PyPI ``mlcommons-loadgen``, module ``mlperf_loadgen``, imported lazily) issues the
queries, times them and writes mlperf_log_summary.txt with its VALID/INVALID verdict; our SUT
runs each query's samples on the session from one worker thread and reports them complete.
LoadGen is one global test at a time, so runs are serialised here.

The study runs where the suite's measurements run (an isolated worker by default), so a runtime that
hangs under LoadGen is killed with its worker instead of holding the session: LoadGen's own test cannot
be interrupted from another thread.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BackendError, MeasurementError
from ..measure.inputs import make_feeds
from .tenants import backend_load

if TYPE_CHECKING:
    from ..backends.base import Session
    from ..devices import Device
    from ..measure.profiles import Profile
    from ..models.model import Model

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
_LOCK = threading.Lock()
_LINE = re.compile(r"^\s*([^:=]+?)\s*:\s*(\S.*?)\s*$")


@dataclass(frozen=True)
class LoadGenSettings:
    """What LoadGen is told; expected latency comes from a calibration run of the session."""

    scenario: str
    min_duration_s: float
    min_query_count: int
    expected_latency_s: float
    max_duration_s: float = 0.0  # 0: LoadGen's own (no cap)
    samples_per_query: int = 8  # MultiStream
    server_target_qps: float = 0.0
    server_latency_bound_s: float = 0.0
    performance_sample_count: int = 16

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadGenResult:
    """LoadGen's verdict and summary for one run, and the figures read from it."""

    scenario: str
    settings: LoadGenSettings
    verdict: str
    summary: str
    fields: dict[str, str]
    outdir: str

    def number(self, key: str) -> float | None:
        value = self.fields.get(key)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def latency_ms(self, percentile: str) -> float | None:
        """A percentile from the summary ('50.00', '90.00', '99.00'), in ms."""
        ns = self.number(f"{percentile} percentile latency (ns)")
        return None if ns is None else ns / 1e6

    @property
    def samples_per_s(self) -> float | None:
        """Offline and Server state samples/s; SingleStream its queries/s (one sample each)."""
        for key in ("Samples per second", "Completed samples per second", "QPS w/o loadgen overhead"):
            if (v := self.number(key)) is not None:
                return v
        return None

    def metrics(self) -> dict[str, dict[str, Any]]:
        source = f"MLPerf LoadGen {self.scenario} summary (mlperf_log_summary.txt), verdict {self.verdict}"
        out: dict[str, dict[str, Any]] = {}
        if (ips := self.samples_per_s) is not None:
            out["throughput_ips"] = {"value": ips, "unit": "inferences/s", "method": "measured", "source": source}
        if self.scenario == "Offline":  # one query holding every sample: its latency is the run's length
            return out
        for pct, name in (("50.00", "latency_p50_ms"), ("90.00", "latency_p90_ms"), ("99.00", "latency_p99_ms")):
            if (ms := self.latency_ms(pct)) is not None:
                out[name] = {"value": ms, "unit": "ms", "method": "measured",
                             "source": source + (", per query" if self.scenario == "MultiStream" else "")}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "verdict": self.verdict, "settings": self.settings.to_dict(),
                "outdir": self.outdir, "summary": self.summary}


def parse_summary(text: str) -> tuple[str, dict[str, str]]:
    """LoadGen's verdict and every 'key : value' line of its summary."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) not in fields:
            fields[m.group(1)] = m.group(2)
    verdict = fields.get("Result is", "UNKNOWN").split()[0]
    return verdict, fields


def _lg() -> Any:  # the mlperf_loadgen module (untyped)
    try:
        import mlperf_loadgen
    except ImportError:
        raise BackendError("mlperf_loadgen is not importable: pip install 'pytest-edgeai[loadgen]' "
                           "(PyPI mlcommons-loadgen)") from None
    return mlperf_loadgen


def _test_settings(lg: Any, s: LoadGenSettings) -> Any:
    if s.scenario not in SCENARIOS:
        raise MeasurementError(f"unknown LoadGen scenario '{s.scenario}'; known: {', '.join(SCENARIOS)}")
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, s.scenario)
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = int(s.min_duration_s * 1000)
    ts.min_query_count = int(s.min_query_count)
    if s.max_duration_s:
        ts.max_duration_ms = int(s.max_duration_s * 1000)
    latency_ns = max(1, int(s.expected_latency_s * 1e9))
    ts.single_stream_expected_latency_ns = latency_ns
    ts.multi_stream_samples_per_query = s.samples_per_query
    ts.multi_stream_expected_latency_ns = latency_ns * s.samples_per_query
    # a little above the rate one worker reaches, so LoadGen generates enough samples for min duration
    ts.offline_expected_qps = 1.1 / s.expected_latency_s
    if s.scenario == "Server":
        if s.server_target_qps <= 0 or s.server_latency_bound_s <= 0:
            raise MeasurementError("the Server scenario needs a target QPS and a latency bound")
        ts.server_target_qps = s.server_target_qps
        ts.server_target_latency_ns = int(s.server_latency_bound_s * 1e9)
    return ts


class _SUT:
    """Runs queries on one session from one worker thread, in the order LoadGen issued them."""

    def __init__(self, lg: Any, session: Session, samples: list[dict[str, np.ndarray]]):
        self.lg = lg
        self.session = session
        self.samples = samples
        self.queue: queue.Queue[list[Any] | None] = queue.Queue()  # LoadGen's QuerySamples; None: stop
        self.error: str | None = None
        self.thread = threading.Thread(target=self._work, daemon=True, name="edgeai-loadgen-sut")

    def issue(self, query_samples: list[Any]) -> None:
        self.queue.put(list(query_samples))

    def _work(self) -> None:
        lg = self.lg
        while (batch := self.queue.get()) is not None:
            responses = []
            for sample in batch:
                if self.error is None:
                    try:
                        self.session.run(self.samples[sample.index % len(self.samples)])
                    except Exception as exc:  # answer anyway, or LoadGen waits forever
                        self.error = f"{type(exc).__name__}: {exc}"
                responses.append(lg.QuerySampleResponse(sample.id, 0, 0))
            lg.QuerySamplesComplete(responses)


def run_loadgen(session: Session, samples: list[dict[str, np.ndarray]], settings: LoadGenSettings,
                outdir: Path) -> LoadGenResult:
    """One LoadGen test; its logs land in ``outdir``; the summary is parsed and kept whole."""
    lg = _lg()
    ts = _test_settings(lg, settings)
    outdir.mkdir(parents=True, exist_ok=True)
    log = lg.LogSettings()
    log.log_output.outdir = str(outdir)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False
    sut = _SUT(lg, session, samples)
    with _LOCK:
        sut.thread.start()
        sut_handle = lg.ConstructSUT(sut.issue, lambda: None)
        count = min(settings.performance_sample_count, len(samples))
        qsl = lg.ConstructQSL(count, count, lambda indices: None, lambda indices: None)
        try:
            lg.StartTestWithLogSettings(sut_handle, qsl, ts, log)
        finally:
            sut.queue.put(None)
            sut.thread.join(timeout=10)
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut_handle)
    if sut.error:
        raise MeasurementError(f"LoadGen {settings.scenario}: the session failed: {sut.error}")
    summary_path = outdir / "mlperf_log_summary.txt"
    if not summary_path.is_file():
        raise MeasurementError(f"LoadGen {settings.scenario} wrote no summary in {outdir}")
    summary = summary_path.read_text()
    verdict, fields = parse_summary(summary)
    return LoadGenResult(settings.scenario, settings, verdict, summary, fields, str(outdir))


@dataclass
class ServerSearch:
    """Bisection over the Server scenario's target QPS for the highest whose p99 meets the bound."""

    bound_ms: float
    tries: list[LoadGenResult] = field(default_factory=list)

    def met(self, result: LoadGenResult) -> bool:
        p99 = result.latency_ms("99.00")
        return p99 is not None and p99 <= self.bound_ms

    @property
    def best(self) -> LoadGenResult | None:
        good = [r for r in self.tries if self.met(r)]
        return max(good, key=lambda r: r.settings.server_target_qps) if good else None

    def rows(self) -> list[dict[str, Any]]:
        return [{"target_qps": r.settings.server_target_qps, "p99_ms": r.latency_ms("99.00"),
                 "completed_qps": r.number("Completed samples per second"), "met": self.met(r),
                 "verdict": r.verdict, "outdir": r.outdir} for r in self.tries]


def search_server_qps(session: Session, samples: list[dict[str, np.ndarray]], base: LoadGenSettings,
                      low_qps: float, high_qps: float, steps: int, outdir: Path,
                      on_run: Callable[[str], None] | None = None) -> ServerSearch:
    """Try ``high_qps`` first (if it meets the bound, the range was too narrow: stop there), then
    bisect between ``low_qps`` and ``high_qps`` for the remaining ``steps - 1`` tries;
    ``on_run(outdir)`` after each."""
    search = ServerSearch(bound_ms=base.server_latency_bound_s * 1e3)

    def attempt(i: int, qps: float) -> bool:
        result = run_loadgen(session, samples, replace(base, server_target_qps=qps), outdir / f"step{i}-{qps:.1f}qps")
        search.tries.append(result)
        if on_run is not None:
            on_run(result.outdir)
        return search.met(result)

    if attempt(0, high_qps):
        return search
    for i in range(1, steps):
        qps = (low_qps + high_qps) / 2
        if attempt(i, qps):
            low_qps = qps
        else:
            high_qps = qps
    return search


def calibrate_latency(session: Session, feeds: dict[str, np.ndarray], runs: int = 10) -> float:
    """Median seconds per sample over a few runs: what LoadGen is told to expect."""
    session.run(feeds)
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))



@dataclass(frozen=True)
class ServerPlan:
    """The Server scenario's p99 bound and search range, in multiples of the calibrated latency."""

    bound_latencies: float
    search_range: tuple[float, float]  # x the one-worker rate 1 / latency
    steps: int


@dataclass
class LoadGenStudy:
    settings: LoadGenSettings  # what LoadGen was told (before the Server search set a target)
    session_settings: dict[str, Any]
    result: LoadGenResult  # the run the record reports: the Server search's best (else its last try)
    search: ServerSearch | None = None


def loadgen_study(model: Model, device: Device, scenario: str, profile: Profile, max_duration_s: float,
                  outdir: Path, server: ServerPlan, on_run: Callable[[str], None] | None = None) -> LoadGenStudy:
    """``on_run(outdir)`` after each LoadGen run: a Server search is several runs, each a sign of life."""
    session = backend_load(model, device)
    try:
        samples = [make_feeds(session.inputs, 1, seed=i, overrides=model.params.get("input_shapes"))
                   for i in range(LoadGenSettings.performance_sample_count)]
        latency_s = calibrate_latency(session, samples[0], runs=max(5, profile.warmup_count))
        base = LoadGenSettings(scenario, profile.min_duration_s, profile.min_count, latency_s,
                               max_duration_s=max_duration_s,
                               server_latency_bound_s=server.bound_latencies * latency_s)
        if scenario != "Server":
            result = run_loadgen(session, samples, base, outdir)
            return LoadGenStudy(base, session.settings(), result)
        low, high = (f / latency_s for f in server.search_range)
        search = search_server_qps(session, samples, base, low, high, server.steps, outdir, on_run=on_run)
        return LoadGenStudy(base, session.settings(), search.best or search.tries[-1], search)
    finally:
        session.close()
