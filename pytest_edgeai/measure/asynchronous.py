"""The offline scenario through a session's request pool (OpenVINO THROUGHPUT mode, CUDA streams).

A synchronous loop leaves all but one stream idle; this keeps the pool full and stops the clock
only after every request completed (backends.asynchronous.drive guarantees that).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .profiles import Profile
from .scenarios import Measurement, Progress, ProgressCallback, summarise_measurement

if TYPE_CHECKING:
    import numpy as np

    from ..backends.asynchronous import AsyncSession


def measure_async(session: AsyncSession, feeds: dict[str, np.ndarray], batch: int, profile: Profile,
                  progress: ProgressCallback | None = None,
                  window: Callable[[str], None] | None = None) -> Measurement:
    """Offline throughput with the pool full, in the same Measurement shape as ``measure``.

    The first inference is timed apart (synchronously) and excluded; warm-up runs the pool for
    the profile's warm-up count and duration; throughput = completed items / wall time of the
    timed run; each latency is submit -> completion of one request with the pool full.
    """
    clock = time.perf_counter_ns
    started_at = time.time()
    t0 = clock()
    session.run(feeds)  # type: ignore[attr-defined]  # every AsyncSession is a Session too
    first_ns = clock() - t0
    warm = session.run_async(feeds, profile.warmup_count, profile.warmup_s)

    def report(elapsed_s: float, count: int) -> None:
        if progress is not None and elapsed_s > 0:
            progress(Progress(elapsed_s, profile.min_duration_s, count, profile.min_count,
                              count * batch / elapsed_s))

    if window is not None:
        window("idle")  # after the warm-up: the baseline in the state the timed window starts from
        window("start")
    timed = session.run_async(feeds, profile.min_count, profile.min_duration_s, report)
    if window is not None:
        window("stop")
    result = summarise_measurement("offline", batch, profile, timed.latencies_ns, timed.wall_ns, first_ns,
                                   warm.count, started_at)
    result.in_flight = timed.in_flight
    return result
