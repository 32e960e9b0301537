"""Which way is better for a metric: decided from its name and unit, in one documented place.

Higher is better: rates (unit '.../s', '.../W', '.../$'), speed-ups ('x'), savings, agreement,
accuracy, tenants. Lower is better: latencies and times ('ms', 's', '_ms'), energy ('J'), power
('W'), sizes and bytes, offloaded fractions, errors. Anything else has no direction: it is shown,
and its change reported as 'changed', but it never counts as a regression or an improvement.
"""

from __future__ import annotations

HIGHER, LOWER, UNKNOWN = 1, -1, 0

HIGHER_WORDS = ("throughput", "speedup", "speed_up", "saving", "agreement", "accuracy", "tenants",
                "per_w", "per_watt", "per_usd", "per_dollar", "ips", "qps", "fps", "top1", "top_1")
LOWER_WORDS = ("latency", "_ms", "time", "joule", "energy", "_j", "power", "watts", "bytes", "size",
               "memory", "error", "offload", "swap")
HIGHER_UNITS = ("/s", "/w", "/$", "/usd", "x", "%saving", "tenants")
LOWER_UNITS = ("ms", "s", "us", "ns", "j", "mj", "w", "mw", "b", "bytes", "kb", "mb", "kib", "mib")


def direction(name: str, unit: str | None = None) -> int:
    """HIGHER (+1), LOWER (-1) or UNKNOWN (0) is better for metric ``name`` measured in ``unit``."""
    n = name.lower()
    u = (unit or "").strip().lower()
    if any(u.endswith(s) for s in HIGHER_UNITS if s.startswith("/")) or u in HIGHER_UNITS:
        return HIGHER
    if any(w in n for w in HIGHER_WORDS):
        return HIGHER
    if u in LOWER_UNITS or any(w in n for w in LOWER_WORDS):
        return LOWER
    return UNKNOWN


def describe(sense: int) -> str:
    return {HIGHER: "higher is better", LOWER: "lower is better"}.get(sense, "no better direction")
