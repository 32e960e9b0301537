"""How long to measure: the profiles a user picks with --edgeai-profile."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Profile:
    """Warm-up, then at least ``min_duration_s`` AND at least ``min_count`` timed queries."""

    name: str
    warmup_count: int
    warmup_s: float
    min_duration_s: float
    min_count: int
    timeout_s: float  # a measurement running longer than this is a hang (see issue on isolation)
    # a claim's evidence: the interleaved rounds measured first, and the most it may grow to while the
    # verdict is inconclusive (sequential testing, as Chromium's Pinpoint asks for more runs)
    rounds: int = 3
    max_rounds: int = 6
    # a batch-sweep query predicted to take longer than this is left to a longer profile (None: no limit), so
    # Inception-v4 at batch 8 (about 1.4 s a query on 2 cores) does not dominate a run meant to take minutes
    max_query_s: float | None = None
    # executing a split plan predicted to take longer than this (warm-up, calibration and measured runs, one at a
    # time at the plan's predicted latency) is left to a longer profile (None: no limit): SSD-MobileNet V1's plan
    # sends its whole 300x300 input over the 1.6 Mbit/s link, about 2 s an inference and 100 s a test at standard
    max_plan_s: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    # about 1 s a measurement: the whole CPU suite in a few minutes on 2 cores
    "quick": Profile("quick", warmup_count=2, warmup_s=0.2, min_duration_s=1.0, min_count=5, timeout_s=120,
                     rounds=3, max_rounds=4, max_query_s=0.25, max_plan_s=10.0),
    # the default: every CPU suite within 10 minutes on 2 cores, while p90 still rests on >= 10 queries
    "standard": Profile("standard", warmup_count=5, warmup_s=0.5, min_duration_s=2.0, min_count=10, timeout_s=300,
                        rounds=3, max_rounds=8, max_query_s=0.5, max_plan_s=20.0),
    # MLPerf-like: LoadGen's own minimum query count, and a minute a measurement
    "full": Profile("full", warmup_count=10, warmup_s=5.0, min_duration_s=60.0, min_count=1024, timeout_s=1800,
                    rounds=5, max_rounds=15),
}


def over_budget(profile: Profile, batch1_s: float, batches: list[int], where: str) -> dict[int, str]:
    """The batches whose query would outlast ``profile.max_query_s``, each with the reason: predicted as batch x
    the batch-1 query time ``batch1_s`` (measured at ``where``), which errs long, since batching only shortens
    a sample's share of a query. These are left to a longer profile, and the record says so."""
    limit = profile.max_query_s
    if limit is None or not batch1_s > 0:
        return {}
    return {b: (f"a query would take about {b * batch1_s:.2g} s ({b} x the {batch1_s * 1e3:.4g} ms of batch 1 in "
                f"{where}), over the {profile.name} profile's {limit:g} s a query; --edgeai-profile full sweeps it")
            for b in batches if b > 1 and b * batch1_s > limit}


def plan_over_budget(profile: Profile, latency_s: float, inferences: int) -> str | None:
    """Why executing a split plan is left to a longer profile (``profile.max_plan_s``), or None: predicted as
    ``inferences`` one at a time at the plan's predicted ``latency_s``."""
    limit = profile.max_plan_s
    if limit is None or not inferences * latency_s > limit:
        return None
    return (f"executing the plan would take about {inferences * latency_s:.2g} s ({inferences} inferences one at a "
            f"time at its predicted {latency_s * 1e3:.4g} ms), over the {profile.name} profile's {limit:g} s for "
            f"executing a plan; --edgeai-profile full executes it")


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError([f"--edgeai-profile {name}: unknown profile{did_you_mean(name, PROFILES)}; "
                           f"allowed: {', '.join(PROFILES)}"])
    return PROFILES[name]
