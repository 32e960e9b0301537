"""The timing loops: single-stream latency and offline throughput at batch b.

The hot loop does nothing but call ``session.run`` between two ``perf_counter_ns`` reads and
append the difference, so the harness costs what a bare loop costs. ``Session.run`` returns
only when outputs are on the host, so the clock stops after an asynchronous device finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MeasurementError
from .profiles import Profile
from .stats import CV_WARNING, Summary, quantile_fields, summarize, throughput_ci

if TYPE_CHECKING:
    from ..backends.base import Session

SCENARIOS = ("single_stream", "offline")
PROGRESS_EVERY_NS = 500_000_000


@dataclass(frozen=True)
class Progress:
    """What a live progress line shows while a long measurement runs."""

    elapsed_s: float
    target_s: float
    count: int
    min_count: int
    items_per_s: float


ProgressCallback = Callable[[Progress], None]


@dataclass
class Measurement:
    """Every timed query of one scenario run, and what follows from them."""

    scenario: str
    batch: int
    profile: Profile
    samples_ns: list[int]
    wall_ns: int
    first_inference_ns: int
    warmup_count: int
    summary: Summary
    throughput_ips: float
    throughput_ci95: tuple[float, float]  # see stats.throughput_ci: within this window only
    started_at: float
    warnings: list[str] = field(default_factory=list)
    in_flight: int = 1  # requests kept in flight: 1 for the synchronous loop, the pool size when asynchronous
    windows: list[Measurement] = field(default_factory=list)  # the separate windows pooled here (``pooled``)

    @property
    def items(self) -> int:
        return len(self.samples_ns) * self.batch

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Metrics in the record's shape: value, unit, how they were obtained; a pooled measurement's
        figures carry each separate window's figure (``windows``), what a comparison between runs reads."""
        out = self.window_metrics()
        if len(self.windows) > 1:
            per_window = [w.window_metrics() for w in self.windows]
            for name, entry in out.items():
                if name != "first_inference_ms":  # timed once, in the first window
                    entry["windows"] = [m[name]["value"] for m in per_window]
        return out

    def window_metrics(self) -> dict[str, dict[str, Any]]:
        s = self.summary
        how = f"{self.scenario}, batch {self.batch}, {s.count} timed queries after {self.warmup_count} warm-up"
        if self.windows:
            how += f", pooled over {len(self.windows)} separate windows (each warmed up and timed apart)"
        if self.in_flight > 1:
            how += f", {self.in_flight} asynchronous requests in flight (latency = submit to completion)"
        lat = {"unit": "ms", "method": "measured", "source": f"perf_counter_ns per query; {how}"}
        over = (f"the {len(self.windows)} windows' queries pooled as if independent (within a window they are "
                f"autocorrelated; the per-window figures are in 'windows')" if self.windows
                else "one window (queries are autocorrelated)")
        return {
            "throughput_ips": {"value": self.throughput_ips, "unit": "inferences/s",
                               "ci95": list(self.throughput_ci95), "method": "measured",
                               "ci95_basis": "relative bootstrap interval of the mean time per query, applied "
                                             f"to items / wall time; {over}",
                               "source": f"items / wall time of the timed loop; {how}"},
            "latency_mean_ms": {"value": s.mean_ms, **lat},
            "latency_p50_ms": {"value": s.median_ms, "ci95": list(s.median_ci95_ms), **lat,
                               **quantile_fields(0.50, s.count)},
            "latency_p90_ms": {"value": s.p90_ms, **lat, **quantile_fields(0.90, s.count)},
            "latency_p99_ms": {"value": s.p99_ms, **lat, **quantile_fields(0.99, s.count)},
            "latency_min_ms": {"value": s.min_ms, **lat},
            "latency_max_ms": {"value": s.max_ms, **lat},
            "latency_stddev_ms": {"value": s.stddev_ms, **lat},
            "latency_cv": {"value": s.cv, "unit": "ratio", "method": "measured", "source": how},
            "first_inference_ms": {"value": self.first_inference_ns / 1e6, "unit": "ms",
                                   "method": "measured", "source": "the first call, timed apart and excluded"},
        }


def measure(session: Session, feeds: dict[str, np.ndarray], scenario: str, batch: int,
            profile: Profile, progress: ProgressCallback | None = None,
            window: Callable[[str], None] | None = None) -> Measurement:
    """Warm up, then time queries until both the minimum duration and count are reached.

    ``window("start")`` and ``window("stop")`` are called right around the timed loop, so a
    power meter covers exactly the queries that are counted, not the load or the warm-up;
    ``window("idle")`` comes between the warm-up and the timed loop, so an idle baseline is read
    with the model loaded and the device warm, in the state the timed window starts from.
    """
    if scenario not in SCENARIOS:
        raise MeasurementError(f"unknown scenario '{scenario}'; known: {', '.join(SCENARIOS)}")
    if scenario == "single_stream" and batch != 1:
        raise MeasurementError("single_stream runs one sample a query: batch must be 1")
    run = session.run
    clock = time.perf_counter_ns
    started_at = time.time()

    t0 = clock()
    run(feeds)
    first_ns = clock() - t0
    warm_deadline = clock() + int(profile.warmup_s * 1e9)
    warmups = 0
    while warmups < profile.warmup_count or clock() < warm_deadline:
        run(feeds)
        warmups += 1

    samples: list[int] = []
    append = samples.append
    min_count = profile.min_count
    if window is not None:
        window("idle")
        window("start")
    start = clock()
    deadline = start + int(profile.min_duration_s * 1e9)
    next_report = start + PROGRESS_EVERY_NS
    while True:
        t0 = clock()
        run(feeds)
        t1 = clock()
        append(t1 - t0)
        if t1 >= deadline and len(samples) >= min_count:
            break
        if progress is not None and t1 >= next_report:
            next_report = t1 + PROGRESS_EVERY_NS
            elapsed = (t1 - start) / 1e9
            progress(Progress(elapsed, profile.min_duration_s, len(samples), min_count,
                              len(samples) * batch / elapsed))
    wall_ns = clock() - start
    if window is not None:
        window("stop")
    return summarise_measurement(scenario, batch, profile, samples, wall_ns, first_ns, warmups, started_at)


def timed_queries(session: Session, feeds: dict[str, np.ndarray], seconds: float, min_count: int) -> list[int]:
    """A short bare loop after one untimed call: each query's time (ns), until both ``seconds`` and
    ``min_count`` are reached. A reading beside a measurement (the per-record canary), not a measurement."""
    run, clock = session.run, time.perf_counter_ns
    run(feeds)
    samples: list[int] = []
    deadline = clock() + int(seconds * 1e9)
    while True:
        t0 = clock()
        run(feeds)
        t1 = clock()
        samples.append(t1 - t0)
        if t1 >= deadline and len(samples) >= min_count:
            return samples


def measure_windows(session: Session, feeds: dict[str, np.ndarray], scenario: str, batch: int,
                    profile: Profile, windows: int) -> Measurement:
    """``windows`` separate windows of ``profile`` (each warmed up and timed apart), pooled.

    Why separate windows and not one window cut in pieces: queries of one window are autocorrelated (a
    neighbour's burst or a clock change spans many of them), so sub-windows of it are not independent;
    windows timed apart are more nearly so. They are not independent of the machine's drift between
    runs, which moves every window of a run alike: a comparison judges that on the history and the
    canary (results.compare)."""
    return pooled([measure(session, feeds, scenario, batch, profile) for _ in range(windows)])


def pooled(windows: list[Measurement]) -> Measurement:
    """One measurement of several separate windows: every window's queries and wall time together."""
    first = windows[0]
    samples = [t for w in windows for t in w.samples_ns]
    out = summarise_measurement(first.scenario, first.batch, first.profile, samples,
                                sum(w.wall_ns for w in windows), first.first_inference_ns,
                                sum(w.warmup_count for w in windows), first.started_at)
    out.windows = list(windows)
    out.in_flight = first.in_flight
    return out


def summarise_measurement(scenario: str, batch: int, profile: Profile, samples: list[int], wall_ns: int,
                          first_ns: int, warmups: int, started_at: float) -> Measurement:
    """The Measurement of a timed loop's samples, with a warning when they vary too much to trust."""
    summary = summarize(samples)
    throughput = len(samples) * batch / (wall_ns / 1e9)
    warnings = []
    if summary.cv > CV_WARNING:
        warnings.append(f"unstable: latency coefficient of variation {summary.cv:.1%} is above "
                        f"{CV_WARNING:.0%}; the machine may be busy or throttling")
    return Measurement(
        scenario=scenario, batch=batch, profile=profile, samples_ns=samples, wall_ns=wall_ns,
        first_inference_ns=first_ns, warmup_count=warmups, summary=summary,
        throughput_ips=throughput,
        throughput_ci95=throughput_ci(samples, throughput), started_at=started_at, warnings=warnings,
    )
