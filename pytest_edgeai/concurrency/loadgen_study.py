"""A LoadGen scenario as one study on a device: load, calibrate, run (or search, for Server), close.

It runs where the suite's measurements run (an isolated worker by default), so a runtime that hangs
under LoadGen is killed with its worker instead of holding the session: LoadGen's own test cannot be
interrupted from another thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .loadgen import LoadGenResult, LoadGenSettings, ServerSearch, calibrate_latency, run_loadgen, search_server_qps
from .tenants import backend_load

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..devices import Device
    from ..measure.profiles import Profile
    from ..models.model import Model


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
    from ..measure.inputs import make_feeds

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
