"""A model cascade: a small model on the device answers when its top-1 confidence reaches a
threshold; otherwise the input crosses a link to the large model on the next tier.

For each input the cascade either pays the small model's compute, or that plus the link
(one round trip for the request and the answer, plus the input's bytes at the link's goodput)
plus the large model's compute. Expected end-to-end latency is the mean over the inputs;
the compute figures are measured per-sample latencies, the link is the configured one.
A small model may have an "other" output (label ``OTHER``): its inputs are always offloaded.

The latency reduction is judged on an interval from interleaved rounds: each round measures both
models' compute side by side, so each round gives a reduction of its own, and the spread of those
is the evidence (the link is configured and the input set fixed: neither varies between rounds).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CascadeError
from ..measure.rounds import Estimate, mean_estimate

if TYPE_CHECKING:
    from ..config import Link

OTHER = -1
ZLIB_LEVEL = 6
DEFAULT_THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0)


def validate_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise CascadeError(f"cascade threshold {threshold!r} is not a confidence in [0, 1]")
    return float(threshold)


def link_seconds(link: Link, nbytes: np.ndarray | float) -> np.ndarray | float:
    """Request over the link and answer back: RTT + bytes at the goodput (bandwidth x (1 - loss))."""
    goodput = link.bandwidth_mbps * 1e6 / 8.0 * (1.0 - link.loss)
    return link.rtt_ms / 1e3 + np.asarray(nbytes, dtype=np.float64) / goodput


def input_bytes(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bytes of each input as sent (axis 0 = samples): raw, and losslessly compressed with zlib."""
    rows = [np.ascontiguousarray(x).tobytes() for x in inputs]
    return (np.array([len(r) for r in rows], dtype=np.int64),
            np.array([len(zlib.compress(r, ZLIB_LEVEL)) for r in rows], dtype=np.int64))


@dataclass(frozen=True)
class CascadeData:
    """What a cascade is evaluated on: both models' scores, the truth, bytes, measured compute."""

    small_probs: np.ndarray  # (N, Cs)
    small_classes: np.ndarray  # (Cs,) the label of each column; OTHER = "not mine"
    large_probs: np.ndarray  # (N, Cl)
    large_classes: np.ndarray  # (Cl,)
    labels: np.ndarray  # (N,) ground truth
    bytes_raw: np.ndarray  # (N,)
    bytes_compressed: np.ndarray  # (N,)
    small_latency_s: float
    large_latency_s: float

    def __post_init__(self) -> None:
        n = len(self.labels)
        problems = [f"{name} has {len(arr)} rows, the labels {n}" for name, arr in (
            ("small_probs", self.small_probs), ("large_probs", self.large_probs),
            ("bytes_raw", self.bytes_raw), ("bytes_compressed", self.bytes_compressed)) if len(arr) != n]
        if np.shape(self.small_probs)[-1:] != (len(self.small_classes),):
            problems.append(f"small_probs has {np.shape(self.small_probs)[-1]} columns for "
                            f"{len(self.small_classes)} classes")
        if np.shape(self.large_probs)[-1:] != (len(self.large_classes),):
            problems.append(f"large_probs has {np.shape(self.large_probs)[-1]} columns for "
                            f"{len(self.large_classes)} classes")
        if n == 0:
            problems.append("no inputs")
        for name in ("small_latency_s", "large_latency_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                problems.append(f"{name} is {value!r}, not a measured time >= 0")
        if problems:
            raise CascadeError("cascade data do not fit together: " + "; ".join(problems))


@dataclass(frozen=True)
class CascadePoint:
    """The cascade at one threshold. Latencies in ms; bytes per input (offloaded or not)."""

    threshold: float
    fraction_offloaded: float
    bytes_per_input_raw: float
    bytes_per_input_compressed: float
    latency_ms: float  # expected, offloaded inputs sent zlib-compressed
    latency_raw_ms: float  # expected, offloaded inputs sent raw
    baseline_latency_ms: float  # every input to the large model over the link, compressed
    latency_reduction: float  # baseline / cascade
    accuracy: float
    accuracy_large_only: float
    accuracy_loss: float  # large-only accuracy minus the cascade's
    agreement_with_large: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(data: CascadeData, link: Link, threshold: float) -> CascadePoint:
    threshold = validate_threshold(threshold)
    small_pred = np.asarray(data.small_classes)[np.argmax(data.small_probs, axis=1)]
    large_pred = np.asarray(data.large_classes)[np.argmax(data.large_probs, axis=1)]
    local = (np.max(data.small_probs, axis=1) >= threshold) & (small_pred != OTHER)
    answer = np.where(local, small_pred, large_pred)
    away = ~local
    n = len(data.labels)

    def expected_s(nbytes: np.ndarray) -> float:
        remote = link_seconds(link, nbytes[away]) + data.large_latency_s
        return data.small_latency_s + float(np.sum(remote)) / n

    baseline_s = float(np.mean(link_seconds(link, data.bytes_compressed))) + data.large_latency_s
    cascade_s = expected_s(data.bytes_compressed)
    accuracy = float(np.mean(answer == data.labels))
    large_accuracy = float(np.mean(large_pred == data.labels))
    return CascadePoint(
        threshold=threshold,
        fraction_offloaded=float(np.mean(away)),
        bytes_per_input_raw=float(np.sum(data.bytes_raw[away])) / n,
        bytes_per_input_compressed=float(np.sum(data.bytes_compressed[away])) / n,
        latency_ms=cascade_s * 1e3,
        latency_raw_ms=expected_s(data.bytes_raw) * 1e3,
        baseline_latency_ms=baseline_s * 1e3,
        latency_reduction=baseline_s / cascade_s if cascade_s > 0 else math.inf,
        accuracy=accuracy,
        accuracy_large_only=large_accuracy,
        accuracy_loss=large_accuracy - accuracy,
        agreement_with_large=float(np.mean(answer == large_pred)),
    )


def sweep(data: CascadeData, link: Link, thresholds: Iterable[float] = DEFAULT_THRESHOLDS) -> list[CascadePoint]:
    return [evaluate(data, link, t) for t in thresholds]


def reduction_rounds(data: CascadeData, link: Link, threshold: float, small_latency_s: Sequence[float],
                     large_latency_s: Sequence[float]) -> Estimate:
    """The latency reduction at ``threshold``, one per interleaved round of both models' measured compute
    (``small_latency_s[r]``, ``large_latency_s[r]``): their geometric mean, with a t-interval of the logs."""
    if len(small_latency_s) != len(large_latency_s):
        raise CascadeError(f"{len(small_latency_s)} rounds of the small model against {len(large_latency_s)} "
                           f"of the large one: rounds pair one of each")
    per_round = [evaluate(replace(data, small_latency_s=s, large_latency_s=g), link, threshold).latency_reduction
                 for s, g in zip(small_latency_s, large_latency_s)]
    est = mean_estimate(per_round, "latency reductions (both models' compute measured side by side)")
    return replace(est, basis=f"{est.basis}; predicted: the link's time from its model (rtt, bandwidth), "
                              f"not measured, and the input set fixed")
