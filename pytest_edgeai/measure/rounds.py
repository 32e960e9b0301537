"""Interleaved rounds: how two or more configurations are measured side by side, and what follows.

A ratio of two configurations measured one after the other (batch 8 after batch 1, int8 after
fp32) carries the machine's drift between them: on a shared 2-core host its speed moves by
tens of percent from one minute to the next. Measured in interleaved rounds (A B, B A, A B ...)
each round's ratio sees the same machine, so the drift cancels, and the spread of the per-round
ratios is the evidence about the ratio: its interval comes from them (a t-interval of the log
ratios, since ratios multiply), not from one window's thousands of autocorrelated queries.

One figure measured in several rounds (a throughput) gets its interval from the variation
between the rounds' windows in the same way. Nothing here knows about pytest, records or claims.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import numpy as np

from .profiles import Profile
from .stats import quantile_ci

T = TypeVar("T")
CONFIDENCE = 0.95


def round_order(arms: int, index: int) -> list[int]:
    """The arms' order in round ``index``: forward in even rounds, reversed in odd ones (A B, B A, ...),
    so a drift within a round favours no arm over a pair of rounds."""
    order = list(range(arms))
    return order if index % 2 == 0 else order[::-1]


@dataclass
class Interleaved(Generic[T]):
    """Rounds of several arms measured in alternation; ``more`` adds rounds to the same series, so a
    claim left inconclusive can be re-measured sequentially and judged on every round so far."""

    arms: Sequence[Callable[[int], T]]  # arms[i](round) measures arm i once
    results: list[list[T]] = field(default_factory=list)  # results[arm][round]

    def __post_init__(self) -> None:
        if not self.results:
            self.results = [[] for _ in self.arms]

    @property
    def rounds(self) -> int:
        return min(len(r) for r in self.results) if self.results else 0

    def more(self, rounds: int = 1) -> Interleaved[T]:
        for _ in range(rounds):
            index = self.rounds
            for arm in round_order(len(self.arms), index):
                self.results[arm].append(self.arms[arm](index))
        return self


def interleave(arms: Sequence[Callable[[int], T]], rounds: int) -> Interleaved[T]:
    """Measure every arm ``rounds`` times in alternating order; ``arms[i](r)`` measures arm i in round r."""
    return Interleaved(list(arms)).more(rounds)


def round_profile(profile: Profile) -> Profile:
    """One round's window: the profile's duration and count shared out over its rounds, so measuring
    side by side costs about what one window of each configuration cost.

    The warm-up count is shared out too (at least one query), its time floor is not: each round's first
    call is still timed apart and excluded, then the round warms up for at least the profile's warm-up
    time, as LiteRT's benchmark_model does (one run and half a second) and trtexec (200 ms). The count is
    what costs on a slow configuration: five queries of Inception-v4 at batch 8 take 7 s on a 2-core CPU,
    and a sweep paid them in every round. The record's scenario keeps the round's profile."""
    rounds = max(profile.rounds, 1)
    return replace(profile, min_duration_s=profile.min_duration_s / rounds,
                   min_count=max(2, math.ceil(profile.min_count / rounds)),
                   warmup_count=max(1, math.ceil(profile.warmup_count / rounds)))


METER_UPDATES = 20  # sensor updates a shared round window must hold before a metered round may be that short


def metered_round_profile(profile: Profile, update_periods: Sequence[float | None]) -> Profile:
    """A metered round's window: the round's share (:func:`round_profile`) when every meter's sensor updates
    at least METER_UPDATES times in it (RAPL's counter every millisecond, NVML's energy counter every
    20-100 ms), else the profile's full window: a 2 Hz supply would give one or two readings in a third of
    two seconds. An unknown period (no reading yet) keeps the full window."""
    share = round_profile(profile)
    fast = bool(update_periods) and all(p is not None and 0 < p * METER_UPDATES <= share.min_duration_s
                                        for p in update_periods)
    return share if fast else profile


@dataclass(frozen=True)
class Estimate:
    """A figure with the interval a verdict is judged on, and where that interval comes from."""

    value: float
    low: float
    high: float
    basis: str
    rounds: int = 1  # independent windows or rounds the interval rests on

    @classmethod
    def exact(cls, value: float, basis: str = "a deterministic figure, judged exactly") -> Estimate:
        return cls(value, value, value, basis, 0)

    @property
    def interval(self) -> tuple[float, float]:
        return (self.low, self.high)

    def scaled(self, factor: float, basis: str | None = None) -> Estimate:
        """This figure times a known constant (throughput / price): the interval scales with it."""
        lo, hi = sorted((self.low * factor, self.high * factor))
        return replace(self, value=self.value * factor, low=lo, high=hi, basis=basis or self.basis)


def _t(confidence: float, df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def cannot_settle(est: Estimate, threshold: float, max_rounds: int, margin: float = 2.0) -> bool:
    """Whether more rounds, up to ``max_rounds``, would leave a t-interval over rounds straddling ``threshold``
    even if the spread between rounds were ``margin`` times smaller than it looks now (a few rounds' spread is
    itself uncertain: with 3 rounds the true one may well be half the sample's). The half-width is projected as
    t(n-1)/sqrt(n) shrinks (on the logs for a positive figure, as the interval was made); an interval that is
    not a t-interval over rounds (order statistics of one window) is never called hopeless."""
    n = est.rounds
    if n < 2 or n >= max_rounds or "t-interval" not in est.basis or not (math.isfinite(est.low)
                                                                      and math.isfinite(est.high)):
        return False
    log = est.low > 0 and threshold > 0
    if log:
        lo, hi, at = math.log(est.low), math.log(est.high), math.log(threshold)
    else:
        lo, hi, at = est.low, est.high, threshold
    half, gap = (hi - lo) / 2, abs((hi + lo) / 2 - at)
    projected = half * (_t(CONFIDENCE, max_rounds - 1) / _t(CONFIDENCE, n - 1)) * math.sqrt(n / max_rounds)
    return projected > margin * gap


def mean_estimate(values: Sequence[float | None], what: str, confidence: float = CONFIDENCE) -> Estimate:
    """The centre of independent rounds' figures, with a t-interval from their spread (unbounded with one
    round: one window says nothing about how much another would differ). Rates, energies and times are
    positive and vary by factors, so for positive figures this is the geometric mean with the interval of
    the logs (never below zero); otherwise the arithmetic mean."""
    x = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not x:
        return Estimate(math.nan, math.nan, math.nan, f"no {what} measured", 0)
    positive = all(v > 0 for v in x)
    scale = [math.log(v) for v in x] if positive else x
    centre = statistics.fmean(scale)
    value = math.exp(centre) if positive else centre
    if len(x) < 2:
        return Estimate(value, -math.inf, math.inf, f"{what} from 1 round: no interval without a second", 1)
    half = _t(confidence, len(x) - 1) * statistics.stdev(scale) / math.sqrt(len(x))
    if positive:
        return Estimate(value, math.exp(centre - half), math.exp(centre + half),
                        f"geometric mean of {len(x)} rounds' {what}, {confidence:.0%} t-interval of their logs", len(x))
    return Estimate(value, centre - half, centre + half,
                    f"{confidence:.0%} t-interval over {len(x)} rounds' {what}", len(x))


def windows_p90(windows_ns: Sequence[Sequence[float]]) -> Estimate:
    """p90 latency (ms) over every window's queries (ns), with the distribution-free interval from order statistics.
    The queries of one window are not independent (they share its machine state), so once there are several
    windows (a claim re-measured) the interval also holds the t-interval of the windows' own p90s: the spread
    between windows is the evidence about another window, and a verdict rests on the wider of the two."""
    per = [np.asarray(w, dtype=np.float64) / 1e6 for w in windows_ns]
    ms = np.concatenate(per)
    low, high = quantile_ci(ms, 0.9)
    basis = f"95% order-statistic interval of p90 over {ms.size} queries in {len(per)} window(s)"
    if len(per) > 1:
        between = mean_estimate([float(np.percentile(w, 90)) for w in per], "windows' p90")
        low, high = min(low, between.low), max(high, between.high)
        basis += f", widened to hold the {between.basis}"
    return Estimate(float(np.percentile(ms, 90)), low, high, basis, len(per))


def ratio_estimate(numerator: Sequence[float | None], denominator: Sequence[float | None], what: str,
                   confidence: float = CONFIDENCE) -> Estimate:
    """The ratio of two arms measured in the same rounds: geometric mean of the per-round ratios, with
    a t-interval of their logarithms."""
    pairs = [(a, b) for a, b in zip(numerator, denominator)
             if a is not None and b is not None and a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)]
    if not pairs:
        return Estimate(math.nan, math.nan, math.nan, f"no round measured both sides of {what}", 0)
    logs = [math.log(a / b) for a, b in pairs]
    centre = statistics.fmean(logs)
    if len(logs) < 2:
        return Estimate(math.exp(centre), 0.0, math.inf, f"{what} from 1 interleaved round: no interval", 1)
    half = _t(confidence, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return Estimate(math.exp(centre), math.exp(centre - half), math.exp(centre + half),
                    f"{confidence:.0%} t-interval of the log ratios of {len(logs)} interleaved rounds ({what})",
                    len(logs))


def best_of(candidates: dict[str, Callable[[float], Estimate]], what: str,
            confidence: float = CONFIDENCE) -> tuple[str, Estimate]:
    """The best of several estimates (the best batch), corrected for choosing it after the fact.

    Taking the largest of k noisy point estimates overstates the best (the winner's curse). Each
    candidate's interval is computed at confidence 1 - (1 - confidence) / k (Bonferroni), so all k hold
    together; then the best true value lies in [max of the lows, max of the highs]. ``candidates`` maps a
    name to a function giving that candidate's estimate at a confidence level.
    """
    level = 1.0 - (1.0 - confidence) / max(len(candidates), 1)
    estimates = {name: est(level) for name, est in candidates.items()}
    finite = {n: e for n, e in estimates.items() if math.isfinite(e.value)}
    if not finite:
        return next(iter(estimates), ""), Estimate(math.nan, math.nan, math.nan, f"no {what} measured", 0)
    chosen = max(finite, key=lambda n: finite[n].value)
    low = max(e.low for e in finite.values())
    high = max(e.high for e in finite.values())
    rounds = min(e.rounds for e in finite.values())
    return chosen, Estimate(finite[chosen].value, low, high,
                            f"best of {len(finite)} ({', '.join(map(str, finite))}), each at {level:.2%} "
                            f"(Bonferroni for choosing the best); {finite[chosen].basis}", rounds)
