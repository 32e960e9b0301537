"""Measured power of `pytest-edgeai compare`: false regressions in A/A, detection in A/B, with bounds.

Run: python benchmarks/bench_verdict_power.py [--profile standard] [--rounds 60] [--history 6]
     [--workloads 2] [--windows 3] [--slowdowns 0.2] [--load 0] [--keep DIR]
     python benchmarks/bench_verdict_power.py --judge DIR [--history 6] [--repeats K]   (judge runs kept earlier;
     K > 1: each side of a trial the median of K runs of its build, as `pytest-edgeai compare --runs K`)

Every figure is measured on this machine, now. Each "run" is a run directory written through the real
store, holding ``--workloads`` single-stream records of a fake backend whose query is a fixed number of
64x64 matrix products (one BLAS thread), timed by the real loop (measure.scenarios) at the given
profile, in ``--windows`` separate windows of the profile's window shared out
(measure.scenarios.measure_windows; 1: one window, as the suites' single-stream test). Each record
carries its own canary exactly as the suites' records do: the real frozen model (pytest_edgeai.canary,
on onnxruntime, one thread like the fake) read right before and after the timed window through
canary.bracket, the code path of the isolated worker (lab.work.execute). Configuration A does W
products a query; a slowdown s does (1 + s) W (a release slower by a known factor).

Trials are made cheap by measuring each run once and judging it in several trials: round i measures
A_i and one run of each slowdown B_i, in alternating order (A B, B A, ...) so the machine's drift favours
neither. Then, for every round i after the first ``--history`` ones:
- A/A: A_{i-1} against A_i, with A_0..A_{i-1} as the history (the report directory of that build): a
  false regression when the comparison's decision (cli.py `compare`: exit 1 iff Comparison.fails, a
  regression or a measurement of the baseline that failed in the new run; called in-process with the
  history given explicitly) fails the run;
- A/B: A_i against B_i, with A_0..A_i as the history: a detection when it fails the run;
- B/B: B_{i-1} against B_i, with B_0..B_{i-1} as the history: the same configuration twice, so a null
  trial like A/A (printed apart, and pooled with A/A), which doubles the null trials a round gives.
Each trial's new run is fresh, but consecutive trials share runs and history, so they are not fully
independent: the bounds below treat them as if they were. The same runs are also judged with the
windows stripped, with each record's own canary replaced by the run's first reading (as if the canary were
read once, at the run's start: the rule before per-record canaries; a pool measured before them has none
to drop), with no history (the baseline alone), and by Welch's t on the two runs' windows alone
(what compare does NOT do: a run's windows share its machine's state). It prints each rate with its
one-sided 95% Clopper-Pearson bound (upper for false regressions, lower for detection), the regressed
metrics, the throughput verdicts, and every false regression's verdicts with their reasons.
``--load N`` starts N busy processes while measuring. The claims'
power (claims.py) is measured by benchmarks/bench_claim_power.py.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads its BLAS:
    os.environ.setdefault(_var, "1")  # one thread a query, so a busy neighbour does not thrash a pool

import argparse
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pytest_edgeai.canary import FIELD as CANARY_FIELD
from pytest_edgeai.canary import CanaryReader, bracket, canary_model
from pytest_edgeai.measure.profiles import Profile, get_profile
from pytest_edgeai.measure.scenarios import measure, measure_windows
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import (
    CANARY_SUITE,
    Comparison,
    MetricDelta,
    canaries,
    compare_runs,
    direction,
    median_run,
    record_key,
    speed_kind,
    tolerance_for,
    window_noise,
)
from pytest_edgeai.results.record import Record
from pytest_edgeai.results.store import Run, RunStore, list_runs, load_run

SIZE = 64
BASE_WORK = 20  # matrix products a query in configuration A (about a millisecond on this VM when quiet)
NOTE = "benchmarks/bench_verdict_power.py: a fake backend (matrix products), timed for real"
CONFIDENCE = 0.95


class FakeSession:
    """A backend session whose query costs ``work`` 64x64 matrix products: its true speed is known."""

    def __init__(self, work: int):
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((SIZE, SIZE)).astype(np.float32)
        self.work = work

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = self.a
        for _ in range(self.work):
            x = np.tanh(x @ self.a)
        return {"output": x}


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """``processes`` busy loops running meanwhile (a loaded machine), killed on the way out, on a timeout's
    SIGTERM too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for p in loops:
            p.kill()
            p.wait()


class OrtSession:
    def __init__(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # as the fake: one thread, so both see the machine alike
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, feeds: dict[str, np.ndarray]) -> Any:
        return self.session.run(None, feeds)

    def close(self) -> None:
        del self.session


def record(suite: str, model: str, session: Any, feeds: dict[str, np.ndarray], profile: Profile,
           windows: int, canary: CanaryReader) -> Record:
    share = replace(profile, min_duration_s=profile.min_duration_s / windows,
                    min_count=max(2, math.ceil(profile.min_count / windows)))
    m, own = bracket(canary, lambda: measure_windows(session, feeds, "single_stream", 1, share, windows)
                     if windows > 1 else measure(session, feeds, "single_stream", 1, profile))
    r = Record(suite=suite, test_id=f"bench_verdict_power::{model}", device=synthetic.device(),
               backend={"name": "onnxruntime"}, model={"name": model}, scenario={"name": "single_stream", "batch": 1})
    r.metrics.update(m.metrics())
    r.samples["latency_ns"] = m.samples_ns
    r.extra[CANARY_FIELD] = own
    r.warnings.append(NOTE)
    return r


def write_run(root: Path, extra: float, args: argparse.Namespace, canary: CanaryReader) -> Path:
    profile = get_profile(args.profile)
    store = RunStore.create(root, {"environment": {"host": "bench_verdict_power"}, "options": {},
                                   "bench": {"slowdown": extra, "windows": args.windows, "profile": args.profile}})
    for i in range(args.workloads):
        work = BASE_WORK * (i + 1)
        store.write(record("throughput", f"fake_w{work}", FakeSession(round(work * (1 + extra))), {}, profile,
                           args.windows, canary))
    store.finish()
    return store.path


def arm(extra: float) -> str:
    return "a" if extra == 0 else f"b{round(extra * 100)}"


def measure_pool(pool: Path, args: argparse.Namespace) -> None:
    canary = CanaryReader(OrtSession(canary_model(pool / "cache").path), {"input": np.ones((1, 256), np.float32)})
    slowdowns = [float(x) for x in args.slowdowns.split(",") if x.strip()]
    for i in range(args.rounds):
        arms = [0.0, *slowdowns]
        for extra in arms if i % 2 == 0 else arms[::-1]:
            write_run(pool / arm(extra), extra, args, canary)
        print(f"round {i + 1}/{args.rounds} measured ({time.strftime('%H:%M:%S')}, load "
              f"{os.getloadavg()[0]:.1f})", flush=True)


def strip_windows(run: Run) -> Run:
    for r in run.records:
        for entry in r.metrics.values():
            entry.pop("windows", None)
    return run


def run_start_canary(run: Run) -> Run:
    """The run as if its canary had been read once, at its start (the rule before per-record canaries):
    each record's own canary dropped, the first reading of the run kept as the run's canary record."""
    own = [r for r in sorted(run.records, key=lambda r: r.created) if isinstance(r.extra.get(CANARY_FIELD), dict)]
    first = own[0].extra[CANARY_FIELD].get("readings_ms") if own else None
    for r in own:
        del r.extra[CANARY_FIELD]
    if first:
        canary = Record(suite=CANARY_SUITE, test_id="bench_verdict_power::run-start canary", device=own[0].device,
                        backend=own[0].backend, model={"name": "edgeai_canary"},
                        scenario={"name": "single_stream", "batch": 1}, created=own[0].created - 1.0)
        canary.metrics["latency_mean_ms"] = {"value": first[0], "unit": "ms", "method": "measured",
                                             "source": "the run's first canary reading (median of 10 ms)"}
        run.records.append(canary)
    return run


def bound(hits: int, n: int, upper: bool) -> float:
    """One-sided Clopper-Pearson bound at CONFIDENCE of a rate of ``hits`` in ``n`` trials."""
    from scipy import stats

    if upper:
        return 1.0 if hits >= n else float(stats.beta.ppf(CONFIDENCE, hits + 1, n - hits))
    return 0.0 if hits <= 0 else float(stats.beta.ppf(1 - CONFIDENCE, hits, n - hits + 1))


def trials_needed(rate: float) -> int:
    """Trials with no false regression that bound the rate below ``rate`` at CONFIDENCE."""
    return math.ceil(math.log(1 - CONFIDENCE) / math.log(1 - rate))


class Tally:
    def __init__(self) -> None:
        self.failed = 0
        self.trials = 0
        self.metrics: Counter[str] = Counter()
        self.throughput: Counter[str] = Counter()
        self.reasons: list[str] = []  # every failed trial's regressed verdicts, with what they were judged on

    def add_found(self, metrics: list[str]) -> None:
        self.trials += 1
        self.failed += bool(metrics)
        self.metrics.update(metrics)

    def add(self, c: Comparison, trial: str = "") -> None:
        self.trials += 1
        self.failed += c.fails
        self.metrics.update(d.metric for d in c.regressions)
        self.throughput.update(d.verdict for d in c.deltas if d.metric == "throughput_ips")
        self.reasons += [f"{trial}: {describe(d)}" for d in c.regressions]

    def pooled(self, other: Tally) -> Tally:
        out = Tally()
        out.failed, out.trials = self.failed + other.failed, self.trials + other.trials
        out.metrics, out.throughput = self.metrics + other.metrics, self.throughput + other.throughput
        out.reasons = self.reasons + other.reasons
        return out


def describe(d: MetricDelta) -> str:
    """A regressed verdict and what it was judged on, with its record's canary readings."""
    return f"{d.describe()} [drift factor {d.drift if d.drift is not None else 'none'}]"


HEADLINE = ("throughput_ips", "latency_mean_ms", "latency_min_ms", "latency_p50_ms", "latency_p90_ms",
            "latency_p99_ms")


def windows_alone(base: Run, new: Run) -> list[str]:
    """The headline figures Welch's t on the two runs' windows alone (the rule compare.py does not use)
    would call regressed at ALPHA, beyond tolerance, after the canary's correction."""
    drift = {k: canaries(new)[k] / v for k, v in canaries(base).items() if k in canaries(new)}
    old = {record_key(r): r for r in base.records if r.suite != CANARY_SUITE}
    found = []
    for r in new.records:
        b = old.get(record_key(r))
        for name in HEADLINE if b is not None else ():
            be, ne = b.metrics.get(name) or {}, r.metrics.get(name) or {}
            e = window_noise(be.get("windows") or [], ne.get("windows") or [])
            if e is None or not be.get("value") or not ne.get("value"):
                continue
            f = drift.get(record_key(r).device, 1.0)
            ratio = ne["value"] / be["value"] * f ** speed_kind(name, str(ne.get("unit") or ""))
            worse = math.log(ratio) * direction(name, ne.get("unit")) * -1
            if worse > e.threshold and abs(ratio - 1) > tolerance_for(r.suite, name, None):
                found.append(name)
    return found


def judge(pool: Path, history: int, repeats: int = 1) -> dict[str, dict[str, Tally]]:
    """Every trial the pool's runs allow, judged by compare with the history (its windows as the floor), with
    the windows stripped, with no history; and by Welch on the windows alone. Default tolerances. With
    ``repeats`` K > 1, each side of a trial is the median of K runs of its build (compare.median_run, as
    `pytest-edgeai compare --runs K`): A/A is A_{i-K..i-1} against A_{i..i+K-1}, A/B the latter against
    B_{i..i+K-1}, B/B as A/A; trials step by K, so no run is on the new side of two trials."""
    arms = sorted(p.name for p in pool.iterdir() if p.is_dir() and (p.name == "a" or p.name.startswith("b")))
    runs = {a: [load_run(p) for p in list_runs(pool / a)] for a in arms}
    stripped = {a: [strip_windows(load_run(p)) for p in list_runs(pool / a)] for a in arms}
    started = {a: [run_start_canary(load_run(p)) for p in list_runs(pool / a)] for a in arms}
    out: dict[str, dict[str, Tally]] = {}
    ways = {"compare (history, windows as floor)": (runs, True), "compare, windows stripped": (stripped, True),
            "compare, run-start canary only (each record's own canary dropped)": (started, True),
            "compare, no history": (runs, False)}
    a_count = len(runs["a"])
    k = max(repeats, 1)
    if k > 1:  # the main rule only: each side the median of k runs
        ways = {f"compare, each side the median of {k} runs (history, windows as floor)": (runs, True)}
    alone = out["Welch on windows alone (not compare's rule)"] = {a: Tally() for a in arms}
    for i in range(max(history, 1), a_count if k == 1 else 0):
        alone["a"].add_found(windows_alone(runs["a"][i - 1], runs["a"][i]))
        for b in arms:
            if b != "a" and i < len(runs[b]):
                alone[b].add_found(windows_alone(runs["a"][i], runs[b][i]))
    for way, (source, with_history) in ways.items():
        tallies = out[way] = {a: Tally() for a in arms} | {f"{b}/{b}": Tally() for b in arms if b != "a"}
        for i in range(max(history, k), a_count - k + 1, k):
            for b in arms:  # the null trials: A_{i-1} vs A_i, B_{i-1} vs B_i, each with its own build's history
                runs_b = source[b]
                if i + k <= len(runs_b):
                    name = "a" if b == "a" else f"{b}/{b}"
                    tallies[name].add(compare_runs(median_run(runs_b[i - k:i]), median_run(runs_b[i:i + k]),
                                                   history=runs_b[max(0, i - 20):i] if with_history else []),
                                      f"{name} round {i}")
            a_runs = source["a"]
            for b in arms:
                if b != "a" and i + k <= len(source[b]):
                    tallies[b].add(compare_runs(median_run(a_runs[i:i + k]), median_run(source[b][i:i + k]),
                                                history=a_runs[max(0, i - 20):i + k] if with_history else []),
                                   f"a/{b} round {i}")
    return out


def report(results: dict[str, dict[str, Tally]], pool: Path, history: int) -> None:
    meta = json.loads((next(iter(list_runs(pool / "a"))) / "run.json").read_text()).get("bench", {})
    print(f"\npool {pool}: profile {meta.get('profile')}, {meta.get('windows')} window(s) a record, "
          f"{len(list_runs(pool / 'a'))} A runs; trials after {history} A runs of history")
    print(f"one-sided {CONFIDENCE:.0%} Clopper-Pearson bounds; a false-regression rate of 1% needs "
          f"{trials_needed(0.01)} A/A trials with none to be bounded")
    for way, tallies in results.items():
        nulls = [t for name, t in tallies.items() if name == "a" or "/" in name]
        pooled = nulls[0]
        for t in nulls[1:]:
            pooled = pooled.pooled(t)
        shown = {**tallies, "A/A and B/B pooled": pooled} if len(nulls) > 1 else tallies
        for name, t in shown.items():
            if not t.trials:
                continue
            if name == "a" or "/" in name or name.endswith("pooled"):
                what = ("A/A" if name == "a" else name if name.endswith("pooled")
                        else f"B/B (+{name.split('/')[0][1:]}% work twice)")
                print(f"{way}: {what} false regressions {t.failed}/{t.trials} = {t.failed / t.trials:.1%} "
                      f"(upper bound {bound(t.failed, t.trials, True):.1%}); metrics: {dict(t.metrics)}")
                if not name.endswith("pooled") and "(history, windows as floor)" in way:
                    print("\n".join(f"    false regression, {r}" for r in t.reasons))
            else:
                print(f"{way}: A/B +{name[1:]}% work, detected {t.failed}/{t.trials} = {t.failed / t.trials:.1%} "
                      f"(lower bound {bound(t.failed, t.trials, False):.1%}); metrics: {dict(t.metrics)}; "
                      f"throughput verdicts: {dict(t.throughput)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--rounds", type=int, default=60, help="rounds to measure (one A run + one per slowdown)")
    parser.add_argument("--history", type=int, default=6, help="A runs before the first trial")
    parser.add_argument("--workloads", type=int, default=2)
    parser.add_argument("--windows", type=int, default=3, help="separate windows a record")
    parser.add_argument("--slowdowns", default="0.2", help="comma-separated extra work of the B arms")
    parser.add_argument("--load", type=int, default=0, help="busy processes to start while measuring")
    parser.add_argument("--keep", type=Path, help="keep the measured runs here (to judge again with --judge)")
    parser.add_argument("--judge", type=Path, help="judge runs measured earlier into this directory")
    parser.add_argument("--repeats", type=int, default=1,
                        help="judge each side of a trial as the median of this many runs of its build")
    args = parser.parse_args()
    if args.judge:
        report(judge(args.judge, args.history, args.repeats), args.judge, args.history)
        return
    pool = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="verdict-power-"))
    started = time.time()
    with busy(args.load):
        measure_pool(pool, args)
    print(f"measured {args.rounds} rounds in {time.time() - started:.0f} s with {args.load} extra busy processes")
    try:
        report(judge(pool, args.history, args.repeats), pool, args.history)
    finally:
        if not args.keep:
            shutil.rmtree(pool, ignore_errors=True)


if __name__ == "__main__":
    main()
