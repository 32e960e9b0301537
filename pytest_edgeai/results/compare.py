"""Compare a run with a baseline: for every metric of every matched record, the ratio, its
interval, whether the change is significant, and a verdict against the tolerance.

Verdicts (direction-aware, see direction.py; tolerance t as a fraction):
- regressed / improved: significant (significance.py) and worse / better than the baseline by more than t;
- unchanged: the change is within t (significant or not);
- too noisy to say: beyond t but not significant, or beyond t with nothing to test it with;
- changed: significant and beyond t for a metric with no better direction (never a regression).
Tolerances come from devices.toml [tolerances.SUITE] METRIC = fraction, then DEFAULT_TOLERANCES,
then DEFAULT_TOLERANCE; ``fail_on`` overrides them all (the CLI's --fail-on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import significance as sig
from .direction import HIGHER, UNKNOWN, direction
from .identity import Key, index, label, record_key, versions
from .record import Record
from .store import Run

REGRESSED, IMPROVED, UNCHANGED, NOISY, CHANGED = ("regressed", "improved", "unchanged",
                                                  "too noisy to say", "changed")
DEFAULT_TOLERANCES = {"throughput_ips": 0.05, "latency_p99_ms": 0.10}
DEFAULT_TOLERANCE = 0.10


@dataclass
class MetricDelta:
    key: Key
    metric: str
    unit: str
    base: float
    new: float
    ratio: float
    ratio_ci: tuple[float, float] | None
    p_value: float | None
    significant: bool | None  # None: nothing to test the change with
    tolerance: float
    sense: int
    verdict: str
    test: str  # how significance was decided, in words

    @property
    def label(self) -> str:
        return label(self.key)

    @property
    def change(self) -> float:
        """Relative change new/base - 1 (signed; see ``sense`` for which way is better)."""
        return self.ratio - 1.0

    def describe(self) -> str:
        ci = f" [{self.ratio_ci[0] - 1:+.1%}, {self.ratio_ci[1] - 1:+.1%}]" if self.ratio_ci else ""
        p = f", p={self.p_value:.2g}" if self.p_value is not None else ""
        return (f"{self.label} {self.metric}: {self.base:.4g} -> {self.new:.4g} {self.unit} "
                f"({self.change:+.1%}{ci}{p}; tolerance {self.tolerance:.0%}): {self.verdict}")


@dataclass
class Comparison:
    base: Run
    new: Run
    deltas: list[MetricDelta] = field(default_factory=list)
    only_base: list[Key] = field(default_factory=list)
    only_new: list[Key] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def by_verdict(self, verdict: str) -> list[MetricDelta]:
        return [d for d in self.deltas if d.verdict == verdict]

    @property
    def regressions(self) -> list[MetricDelta]:
        return self.by_verdict(REGRESSED)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.deltas:
            out[d.verdict] = out.get(d.verdict, 0) + 1
        return out


def tolerance_for(suite: str, metric: str, tolerances: dict[str, dict[str, float]] | None,
                  fail_on: float | None = None) -> float:
    if fail_on is not None:
        return fail_on
    configured = (tolerances or {}).get(suite, {})
    if metric in configured:
        return configured[metric]
    return DEFAULT_TOLERANCES.get(metric, DEFAULT_TOLERANCE)


def judge(ratio: float, sense: int, tolerance: float, significant: bool | None) -> str:
    beyond = abs(ratio - 1.0) > tolerance
    if not beyond:
        return UNCHANGED
    if not significant:
        return NOISY
    if sense == UNKNOWN:
        return CHANGED
    better = ratio > 1.0 if sense == HIGHER else ratio < 1.0
    return IMPROVED if better else REGRESSED


def numeric_value(entry: dict[str, Any] | None) -> float | None:
    value = None if entry is None else entry.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class SampleTest:
    """The tests on two records' latency samples, done once per pair of records."""

    p_value: float | None
    cis: dict[str, tuple[float, float]]
    counts: tuple[int, int]

    @classmethod
    def of(cls, b: Record, n: Record) -> SampleTest | None:
        bs, ns = b.samples.get("latency_ns") or [], n.samples.get("latency_ns") or []
        if len(bs) < 2 or len(ns) < 2:
            return None
        return cls(sig.mann_whitney_p(bs, ns), sig.ratio_cis(bs, ns), (len(bs), len(ns)))


def compare_metric(key: Key, name: str, b: Record, n: Record, tolerance: float,
                   samples: SampleTest | None = None) -> MetricDelta | None:
    """The delta of one metric between two matched records; None when it cannot be a ratio."""
    bv, nv = numeric_value(b.metrics.get(name)), numeric_value(n.metrics.get(name))
    if bv is None or nv is None or bv == 0:
        return None
    entry = n.metrics[name]
    sense = direction(name, entry.get("unit"))
    ratio = nv / bv
    ci = p = significant = None
    test = "nothing to test with (no samples, no recorded intervals)"
    if name in sig.SAMPLE_STATISTICS and samples is not None:
        p, ci = samples.p_value, samples.cis.get(name)
        significant = p is not None and p < sig.ALPHA and ci is not None and not (ci[0] <= 1.0 <= ci[1])
        test = (f"Mann-Whitney U on {samples.counts[0]}+{samples.counts[1]} latency samples (p < {sig.ALPHA}) and "
                f"{sig.CONFIDENCE:.0%} bootstrap interval of the ratio excluding 1")
    elif b.metrics[name].get("ci95") and entry.get("ci95"):
        ci = sig.interval_ratio(b.metrics[name]["ci95"], entry["ci95"])
        significant = not sig.intervals_overlap(b.metrics[name]["ci95"], entry["ci95"])
        test = "recorded 95% intervals (significant when they do not overlap)"
    return MetricDelta(key=key, metric=name, unit=str(entry.get("unit") or ""), base=bv, new=nv,
                       ratio=ratio, ratio_ci=ci, p_value=p, significant=significant,
                       tolerance=tolerance, sense=sense, verdict=judge(ratio, sense, tolerance, significant),
                       test=test)


def compare_runs(base: Run, new: Run, tolerances: dict[str, dict[str, float]] | None = None,
                 fail_on: float | None = None) -> Comparison:
    """Pair the records of two runs and judge every metric they share."""
    base_idx, base_notes = index([r for r in base.records if r.status == "ok"])
    new_idx, new_notes = index([r for r in new.records if r.status == "ok"])
    out = Comparison(base=base, new=new, notes=[f"baseline: {m}" for m in base_notes] + new_notes)
    out.notes += base.problems + new.problems
    out.notes += [f"{label(record_key(r))}: failed in this run: {r.error}"
                  for r in new.records if r.status == "error"]
    for key in sorted(set(base_idx) | set(new_idx)):
        b, n = base_idx.get(key), new_idx.get(key)
        if b is None:
            out.only_new.append(key)
            continue
        if n is None:
            out.only_base.append(key)
            continue
        vb, vn = versions(b), versions(n)
        if vb != vn:
            changed = ", ".join(f"{k} {vb.get(k, '-')} -> {vn.get(k, '-')}" for k in sorted(set(vb) | set(vn))
                                if vb.get(k) != vn.get(k))
            out.notes.append(f"{label(key)}: versions differ ({changed})")
        samples = SampleTest.of(b, n) if any(m in b.metrics for m in sig.SAMPLE_STATISTICS) else None
        for name in n.metrics:
            if name in b.metrics:
                delta = compare_metric(key, name, b, n, tolerance_for(key[0], name, tolerances, fail_on), samples)
                if delta is not None:
                    out.deltas.append(delta)
    if not out.deltas and base_idx and new_idx:
        base_dev = sorted({k[1][0] for k in base_idx})
        new_dev = sorted({k[1][0] for k in new_idx})
        out.notes.insert(0, f"the runs share no measurement to compare: the baseline measured "
                            f"{', '.join(base_dev)}, this run {', '.join(new_dev)} "
                            f"(records are matched on suite, device name/kind/backend/hardware id, "
                            f"model, scenario and batch)")
    return out


def parse_fraction(text: str) -> float:
    """'5%' or '0.05' to 0.05 (ValueError otherwise)."""
    t = str(text).strip()
    value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    if not 0 <= value < 10:
        raise ValueError(text)
    return value


def summary_lines(comparison: Comparison, show: tuple[str, ...] = (REGRESSED, IMPROVED)) -> list[str]:
    """Lines for a terminal: counts, then each delta whose verdict is in ``show``."""
    counts = comparison.counts()
    head = ", ".join(f"{counts.get(v, 0)} {v}" for v in (REGRESSED, IMPROVED, UNCHANGED, NOISY, CHANGED)
                     if counts.get(v))
    lines = [f"vs baseline {comparison.base.path}: {head or 'no metric in common'}"]
    lines += [f"  {d.describe()}" for d in comparison.deltas if d.verdict in show]
    lines += [f"  note: {n}" for n in comparison.notes]
    return lines
