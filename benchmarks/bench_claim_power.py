"""Measured power of the claims: how often a claim is met, missed or left inconclusive at known slowdowns.

Run: python benchmarks/bench_claim_power.py [--profile standard] [--trials 20] [--factors 1,1.2,1.5,2,3]
     [--work 20] [--load 0] [--seed 0] [--floor IPS] [--p90-bound MS] [--ratio-floor 0.75]

Every figure is measured on this machine, now, on the fake backend of bench_verdict_power.py (a query is a
fixed number of 64x64 matrix products on one BLAS thread, so its true speed scales as 1 / work), timed by
the real loop (measure.scenarios.measure) and judged by the real claim code: ClaimChecker.check, which
judges an interval (claims.judge) and, while the verdict is inconclusive, re-measures up to the profile's
max_rounds unless measure.rounds.cannot_settle says that would not settle it. Each claim is measured as
the suites measure it:
- min_inferences_per_s (the throughput suite's batch sweep): offline batch-1 throughput in interleaved
  rounds of the round's share of the profile (measure.rounds.Interleaved, round_profile), the geometric mean
  of the rounds with the t-interval of their logs (claims.rounds_estimate); one more round while inconclusive;
- max_p90_latency_ms (the throughput suite's single stream): p90 over one window of the profile, with the
  order-statistic interval; one more window while inconclusive, the interval then also holding the spread of
  the windows' p90s (measure.rounds.windows_p90, the function the suite calls);
- a ratio of two arms measured side by side (the compression suite's min_int8_speedup path, judged here
  against the floor devices.toml gives min_batching_speedup): the per-round ratios of the slowed arm's
  throughput over configuration A's, in the same interleaved rounds (claims.rounds_ratio); one more round of
  both arms while inconclusive. The throughput claim is judged on the slowed arm of that same series, first,
  as the batch sweep judges min_inferences_per_s before min_batching_speedup on one series (so, as there,
  rounds the first claim added count for the second).

Configuration A does ``--work`` W products a query. First A is measured once as above (the calibration) and
each claim's threshold set by the rule devices.toml states for the CPU claims: a throughput floor at the
calibration rounds' interval low end / 1.5, a p90 bound at 2x the calibration p90, a floor of 0.75 for the
ratio of two arms (options override them). Then ``--trials`` trials: each measures, for every factor f in
``--factors``, a fresh series of A and of the slowed configuration (round(f W) products a query) and fresh
single-stream windows of the slowed one, and judges the three claims; the factors' order alternates between
trials (a seeded shuffle, then its reverse) so the machine's drift favours none. What each claim's figure
truly is at f comes from the calibration and the work (A's throughput / f, A's p90 x f, 1 / f), so whether f
is truly inside or outside the claim is computed, not assumed (the calibration is itself one noisy
measurement: the trials' own mean figure is printed beside it). It prints per claim and factor the counts
and rates of met / inconclusive / missed with one-sided 95% Clopper-Pearson bounds, the rounds or windows the
verdicts rested on, and the wall time; then the false alarms (missed where the claim truly holds), the false
passes (met where it truly does not; inconclusive is not a pass) and the detections, also read as
``--edgeai-strict`` reads them (inconclusive fails). ``--load N`` starts N busy processes while measuring.
The power of `pytest-edgeai compare` is measured by bench_verdict_power.py.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

# first of the non-standard imports: it pins each BLAS to one thread before numpy loads
from bench_verdict_power import BASE_WORK, CONFIDENCE, FakeSession, bound, busy

from pytest_edgeai.claims import (
    CLAIMS,
    INCONCLUSIVE,
    MET,
    MISSED,
    ClaimChecker,
    ClaimResult,
    ClaimSpec,
    rounds_estimate,
    rounds_ratio,
)
from pytest_edgeai.devices import Device
from pytest_edgeai.measure.profiles import Profile, get_profile
from pytest_edgeai.measure.rounds import Estimate, Interleaved, round_order, round_profile, windows_p90
from pytest_edgeai.measure.scenarios import measure
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.record import Record

THROUGHPUT, P90, RATIO = "min_inferences_per_s", "max_p90_latency_ms", "min_int8_speedup"
SUITES = {THROUGHPUT: "throughput", P90: "throughput", RATIO: "compression"}
MODEL = "fake"
RATIO_FLOOR = 0.75  # devices.toml's min_batching_speedup: two arms of equal work, 25% allowed for noise
INSIDE, OUTSIDE, BOUNDARY = "inside", "outside", "on the boundary"
VERDICTS = (MET, INCONCLUSIVE, MISSED)


def window(session: Any, scenario: str, profile: Profile) -> Record:
    """One timed window of ``session`` through the real loop, as a record (what the suites' estimates read)."""
    m = measure(session, {}, scenario, 1, profile)
    r = Record(suite="throughput", test_id=f"bench_claim_power::{scenario}", device=synthetic.device(),
               backend={"name": "fake"}, model={"name": MODEL}, scenario={"name": scenario, "batch": 1})
    r.metrics.update(m.metrics())
    r.samples["latency_ns"] = list(m.samples_ns)
    return r


def p90_of(windows: Sequence[Record]) -> Estimate:
    return windows_p90([w.samples["latency_ns"] for w in windows])


@dataclass(frozen=True)
class Calibration:
    """Configuration A measured once, as a suite measures it: what the thresholds and the truth come from."""

    work: int
    throughput: Estimate
    p90: Estimate
    seconds: float


def calibrate(work: int, profile: Profile, make: Callable[[int], Any] = FakeSession) -> Calibration:
    started = time.perf_counter()
    session = make(work)
    share = round_profile(profile)
    series = Interleaved([lambda r: window(session, "offline", share)]).more(profile.rounds)
    throughput = rounds_estimate(series.results[0], "throughput_ips", "offline throughputs")
    p90 = p90_of([window(session, "single_stream", profile)])
    return Calibration(work, throughput, p90, time.perf_counter() - started)


def thresholds(cal: Calibration, floor: float | None = None, p90_bound: float | None = None,
               ratio_floor: float = RATIO_FLOOR) -> dict[str, float]:
    """Each claim's threshold by devices.toml's rule for the CPU claims, unless given."""
    return {THROUGHPUT: cal.throughput.low / 1.5 if floor is None else floor,
            P90: 2.0 * cal.p90.value if p90_bound is None else p90_bound, RATIO: ratio_floor}


def true_value(claim: str, cal: Calibration, factor: float) -> float:
    """The claim's figure at ``factor`` times A's work, from the calibration (the fake's speed scales as 1 / work)."""
    return {THROUGHPUT: cal.throughput.value / factor, P90: cal.p90.value * factor, RATIO: 1.0 / factor}[claim]


def truth(claim: str, value: float, threshold: float) -> str:
    """Whether a figure truly meets the claim: INSIDE, OUTSIDE, or on its BOUNDARY (no error can be counted)."""
    if math.isclose(value, threshold, rel_tol=1e-9):
        return BOUNDARY
    above = value > threshold
    return INSIDE if above == (CLAIMS[SUITES[claim]][claim].direction == "min") else OUTSIDE


def refuse(message: str) -> NoReturn:
    raise AssertionError(f"bench_claim_power judges claims, it never asserts them: {message}")


def checkers(limits: dict[str, float], profile: Profile) -> dict[str, ClaimChecker]:
    """The suites' claim checkers for a device stating exactly these claims, with the profile's re-measuring."""
    device = Device(name="cpu", kind="cpu", backend="onnxruntime",
                    claims=tuple(ClaimSpec(SUITES[c], c, t) for c, t in limits.items()))
    return {suite: ClaimChecker(device, suite, save=lambda r: None, fail=refuse, skip=refuse,
                                max_rounds=profile.max_rounds) for suite in set(SUITES.values())}


def trial(work: int, slowed: int, profile: Profile, limits: dict[str, float],
          make: Callable[[int], Any] = FakeSession) -> dict[str, tuple[ClaimResult, float]]:
    """Measure A (``work`` a query) and the slowed configuration (``slowed``) afresh, judge each claim through
    the suites' path; each verdict with the seconds of measuring behind it (the series' first rounds are
    shared by the throughput and the ratio claims and counted in the throughput's)."""
    check = checkers(limits, profile)
    arms = [make(work), make(slowed)]
    share = round_profile(profile)
    series = Interleaved([lambda r, s=s: window(s, "offline", share) for s in arms])

    def throughput() -> Estimate:
        return rounds_estimate(series.results[1], "throughput_ips", "offline throughputs")

    def ratio() -> Estimate:
        return rounds_ratio(series.results[1], series.results[0], "throughput_ips", "slowed / A")

    def more(estimate: Callable[[], Estimate]) -> Callable[[], Estimate]:
        def again() -> Estimate:
            series.more(1)
            return estimate()
        return again

    out: dict[str, tuple[ClaimResult, float]] = {}
    started = time.perf_counter()
    series.more(profile.rounds)
    for claim, estimate in ((THROUGHPUT, throughput), (RATIO, ratio)):
        result = check[SUITES[claim]].check(claim, estimate(), MODEL, more=more(estimate))
        assert result is not None  # the device states every claim
        out[claim] = (result, time.perf_counter() - started)
        started = time.perf_counter()
    windows = [window(arms[1], "single_stream", profile)]

    def more_windows() -> Estimate:
        windows.append(window(arms[1], "single_stream", profile))
        return p90_of(windows)

    result = check[SUITES[P90]].check(P90, p90_of(windows), MODEL, more=more_windows)
    assert result is not None
    out[P90] = (result, time.perf_counter() - started)
    return out


@dataclass
class Tally:
    """One claim's verdicts at one factor over the trials."""

    verdicts: Counter[str] = field(default_factory=Counter)
    rounds: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)

    def add(self, result: ClaimResult, seconds: float) -> None:
        self.verdicts[result.verdict] += 1
        self.rounds.append(result.rounds)
        self.seconds.append(seconds)
        if result.observed is not None and result.observed > 0 and math.isfinite(result.observed):
            self.observed.append(result.observed)

    @property
    def trials(self) -> int:
        return sum(self.verdicts.values())


def rate(hits: int, n: int) -> str:
    """``hits`` of ``n`` as a rate with its one-sided 95% Clopper-Pearson bounds (lower, upper)."""
    if not n:
        return "0/0"
    return (f"{hits}/{n} = {hits / n:.1%} [>= {bound(hits, n, False):.1%}, <= {bound(hits, n, True):.1%}]")


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else math.nan


def work_of(factor: float, work: int) -> int:
    return max(1, round(factor * work))


def report(tallies: dict[str, dict[float, Tally]], cal: Calibration, limits: dict[str, float],
           factors: Sequence[float]) -> None:
    """Per claim and factor: the verdicts' rates with bounds, rounds, wall time; then the error rates."""
    print(f"one-sided {CONFIDENCE:.0%} Clopper-Pearson bounds [lower, upper]; inconclusive is never a pass")
    rules = {THROUGHPUT: f"calibration interval low end {cal.throughput.low:.4g} / 1.5",
             P90: f"2 x calibration p90 {cal.p90.value:.4g} ms", RATIO: "two arms, as min_batching_speedup"}
    for claim, by_factor in tallies.items():
        cdef = CLAIMS[SUITES[claim]][claim]
        op = ">=" if cdef.direction == "min" else "<="
        edge = {THROUGHPUT: cal.throughput.value / limits[THROUGHPUT], P90: limits[P90] / cal.p90.value,
                RATIO: 1.0 / limits[RATIO]}[claim]
        print(f"\n{claim} {op} {limits[claim]:.4g} {cdef.unit} ({rules[claim]}): from the calibration, truly met "
              f"below a work factor of {edge:.3g}, truly missed above it")
        sides: dict[str, Counter[str]] = {INSIDE: Counter(), OUTSIDE: Counter()}
        for f in factors:
            t = by_factor[f]
            eff = work_of(f, cal.work) / cal.work
            value = true_value(claim, cal, eff)
            side = truth(claim, value, limits[claim])
            own = geometric_mean(t.observed)
            agree = "" if side == BOUNDARY or truth(claim, own, limits[claim]) == side else (
                "  <- the trials' own figure is on the other side: the calibration's truth is uncertain here")
            print(f"  factor {eff:.3g} ({work_of(f, cal.work)} products): true {value:.4g} {cdef.unit}, {side}; "
                  f"trials' geometric mean {own:.4g}{agree}")
            print("    " + "; ".join(f"{v} {rate(t.verdicts[v], t.trials)}" for v in VERDICTS))
            print(f"    rounds/windows judged on: mean {statistics.fmean(t.rounds):.2f} "
                  f"(max {max(t.rounds)}); wall {statistics.fmean(t.seconds):.2f} s a trial"
                  + (" (the series both claims share)" if claim == THROUGHPUT else
                     " (its own extra rounds only)" if claim == RATIO else ""))
            if side in sides:
                sides[side].update(t.verdicts)
        errors(claim, sides)


def errors(claim: str, sides: dict[str, Counter[str]]) -> None:
    """The two error rates an expert asks for, pooled over the factors truly inside or outside, and as
    --edgeai-strict reads them (inconclusive fails the test)."""
    inside, outside = sides[INSIDE], sides[OUTSIDE]
    n_in, n_out = sum(inside.values()), sum(outside.values())
    print(f"  {claim}, factors truly inside ({n_in} trials): false alarm (missed) {rate(inside[MISSED], n_in)}; "
          f"strict (missed or inconclusive) {rate(inside[MISSED] + inside[INCONCLUSIVE], n_in)}")
    print(f"  {claim}, factors truly outside ({n_out} trials): false pass (met) {rate(outside[MET], n_out)}; "
          f"detected (missed) {rate(outside[MISSED], n_out)}; strict (missed or inconclusive) "
          f"{rate(outside[MISSED] + outside[INCONCLUSIVE], n_out)}")


def orders(factors: Sequence[float], trials: int, seed: int) -> list[list[float]]:
    """Each trial's order of the factors: a seeded shuffle for each pair of trials, forward then reversed."""
    rng = random.Random(seed)
    out = []
    for i in range(trials):
        if i % 2 == 0:
            shuffled = rng.sample(list(factors), len(factors))
        out.append([shuffled[j] for j in round_order(len(shuffled), i)])
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--trials", type=int, default=20, help="independent trials of every factor")
    parser.add_argument("--factors", default="1,1.2,1.5,2,3", help="comma-separated true slowdowns (work x f)")
    parser.add_argument("--work", type=int, default=BASE_WORK, help="64x64 matrix products a query of A")
    parser.add_argument("--load", type=int, default=0, help="busy processes to start while measuring")
    parser.add_argument("--seed", type=int, default=0, help="seeds the factors' order across trials")
    parser.add_argument("--floor", type=float, help="min_inferences_per_s (default: devices.toml's rule)")
    parser.add_argument("--p90-bound", type=float, help="max_p90_latency_ms (default: devices.toml's rule)")
    parser.add_argument("--ratio-floor", type=float, default=RATIO_FLOOR, help="the ratio claim's floor")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    factors = [float(x) for x in args.factors.split(",") if x.strip()]
    started = time.time()
    with busy(args.load):
        cal = calibrate(args.work, profile)
        limits = thresholds(cal, args.floor, args.p90_bound, args.ratio_floor)
        print(f"profile {profile.name} (rounds {profile.rounds}, up to {profile.max_rounds}); A = {args.work} "
              f"products a query; {args.load} extra busy processes")
        print(f"calibration ({cal.seconds:.1f} s): throughput {cal.throughput.value:.4g} in "
              f"[{cal.throughput.low:.4g}, {cal.throughput.high:.4g}] inferences/s ({cal.throughput.basis}); "
              f"p90 {cal.p90.value:.4g} ms in [{cal.p90.low:.4g}, {cal.p90.high:.4g}] ({cal.p90.basis})")
        print("thresholds: " + ", ".join(f"{c} {t:.4g}" for c, t in limits.items()), flush=True)
        tallies = {c: {f: Tally() for f in factors} for c in (THROUGHPUT, P90, RATIO)}
        for i, order in enumerate(orders(factors, args.trials, args.seed)):
            for f in order:
                for claim, (result, seconds) in trial(args.work, work_of(f, args.work), profile, limits).items():
                    tallies[claim][f].add(result, seconds)
            print(f"trial {i + 1}/{args.trials} (factors {', '.join(f'{f:g}' for f in order)}) at "
                  f"{time.strftime('%H:%M:%S')}, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"measured in {time.time() - started:.0f} s")
    report(tallies, cal, limits, factors)


if __name__ == "__main__":
    main()
