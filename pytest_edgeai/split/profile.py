"""Per-block compute latency: each block between consecutive cuts timed as its own model.

Like Scission, a block is run as a standalone segment (one untimed call, then the median of
``repeats``), so its figure includes the per-call session overhead a split stage really pays.
Summing blocks therefore slightly over-counts a stage that runs several blocks in one session;
the prediction error against split execution (execute.py) shows by how much.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence

import numpy as np

from .cuts import GraphCuts
from .runner import SegmentSession


def block_latencies(graph: GraphCuts, boundaries: Sequence[int], feed: Mapping[str, np.ndarray],
                    repeats: int = 5, threads: int | None = 1) -> list[float]:
    """Median seconds of each block [boundaries[k], boundaries[k+1]) on this host."""
    out = []
    values = dict(feed)
    for a, b in zip(boundaries, boundaries[1:]):
        session = SegmentSession(graph.segment(a, b), threads=threads)
        block_feed = {n: values[n] for n in session.segment.inputs}
        produced = session.run(block_feed)  # untimed: first-call allocation and warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            session.run(block_feed)
            times.append(time.perf_counter() - t0)
        out.append(statistics.median(times))
        values.update(produced)
    return out
