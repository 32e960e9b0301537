"""Measured power of `pytest-edgeai compare`: false regressions in A/A, detection in A/B.

Run: python benchmarks/bench_verdict_power.py [--profile standard] [--history 6] [--trials 10]
     [--workloads 2] [--load 0]

Every figure is measured on this machine, now. Each "run" is a run directory written through the real
store, holding the canary (the real frozen model, pytest_edgeai.canary, on onnxruntime) and
``--workloads`` single-stream measurements of a fake backend whose query is a fixed number of
64x64 matrix products (one BLAS thread), timed by the real loop (measure.scenarios.measure) at the given profile.
Configuration A does W products a query; B5 and B20 do 5% and 20% more (a release slower by a known
factor). After ``--history`` runs of A, each trial measures A, B5 and B20 in turn and asks the real
command line, ``pytest-edgeai compare BASE NEW``, with the earlier A runs of the report directory as
its history (a B run is deleted once judged, so the history stays the same build):
- A/A: the previous A run against this one: exit 1 is a false regression;
- A/B: this trial's A against B5 and B20: exit 1 is a detection.
It prints the rates with their counts and how the throughput verdicts of A/B fell. ``--load N`` starts
N busy processes for the duration (killed at the end), to measure a loaded machine on purpose.
The claims' power (claims.py) is not measured here.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads its BLAS:
    os.environ.setdefault(_var, "1")  # one thread a query, so a busy neighbour does not thrash a pool

import argparse
import contextlib
import io
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from pytest_edgeai.canary import canary_model, canary_profile
from pytest_edgeai.cli import main as cli
from pytest_edgeai.measure.profiles import get_profile
from pytest_edgeai.measure.scenarios import measure
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import CANARY_SUITE, compare_runs, earlier_runs
from pytest_edgeai.results.record import Record
from pytest_edgeai.results.store import RunStore, load_run

SIZE = 64
BASE_WORK = 20  # matrix products a query in configuration A (about a millisecond on this VM when quiet)
NOTE = "benchmarks/bench_verdict_power.py: a fake backend (matrix products), timed for real"


class FakeSession:
    """A backend session whose query costs ``work`` 64x64 matrix products: its true speed is known."""

    def __init__(self, work: int):
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((SIZE, SIZE)).astype(np.float32)
        self.work = work

    def run(self, feeds):
        x = self.a
        for _ in range(self.work):
            x = np.tanh(x @ self.a)
        return {"output": x}


class OrtSession:
    def __init__(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # as the fake: one thread, so both see the machine alike
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, feeds):
        return self.session.run(None, feeds)


def record(suite: str, model: str, session, feeds, profile) -> Record:
    m = measure(session, feeds, "single_stream", 1, profile)
    r = Record(suite=suite, test_id=f"bench_verdict_power::{model}", device=synthetic.device(),
               backend={"name": "onnxruntime"}, model={"name": model}, scenario={"name": "single_stream", "batch": 1})
    r.metrics.update(m.metrics())
    r.samples["latency_ns"] = m.samples_ns
    r.warnings.append(NOTE)
    return r


def write_run(root: Path, extra: float, args, canary) -> Path:
    profile = get_profile(args.profile)
    store = RunStore.create(root, {"environment": {"host": "bench_verdict_power"}, "options": {}})
    store.write(record(CANARY_SUITE, "edgeai_canary", canary, {"input": np.ones((1, 256), np.float32)},
                       canary_profile(profile)))
    for i in range(args.workloads):
        work = BASE_WORK * (i + 1)
        store.write(record("throughput", f"fake_w{work}", FakeSession(round(work * (1 + extra))), {}, profile))
    store.finish()
    return store.path


def judged(base: Path, new: Path) -> tuple[int, Counter, Counter]:
    """The CLI's exit code for ``compare base new``, the throughput verdicts and the regressed metrics
    (of the same comparison)."""
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli(["compare", str(base), str(new)])
    c = compare_runs(load_run(base), load_run(new), history=earlier_runs(new.parent, load_run(new)))
    return (code, Counter(d.verdict for d in c.deltas if d.metric == "throughput_ips"),
            Counter(d.metric for d in c.regressions))


def rate(hits: int, n: int) -> str:
    return f"{hits}/{n} = {hits / n:.0%}" if n else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--history", type=int, default=6, help="runs of A before the first trial")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--workloads", type=int, default=2)
    parser.add_argument("--load", type=int, default=0, help="busy processes to start for the duration")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout still kills the busy processes
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    root = Path(tempfile.mkdtemp(prefix="verdict-power-"))
    os.chdir(root)  # no devices.toml here: the default tolerances judge, whatever the checkout's says
    started = time.time()
    try:
        canary = OrtSession(canary_model(root / "cache").path)
        runs = [write_run(root / "reports", 0.0, args, canary) for _ in range(args.history)]
        aa, false_metrics = Counter(), Counter()
        ab = {0.05: Counter(), 0.20: Counter()}
        verdicts = {0.05: Counter(), 0.20: Counter()}
        detecting = {0.05: Counter(), 0.20: Counter()}
        for t in range(args.trials):
            current = write_run(root / "reports", 0.0, args, canary)
            aa_code, _, regressed = judged(runs[-1], current)
            aa[aa_code] += 1
            false_metrics.update(regressed)
            for extra, exits in ab.items():
                slow = write_run(root / "reports", extra, args, canary)
                code, v, found = judged(current, slow)
                exits[code] += 1
                verdicts[extra].update(v)
                detecting[extra].update(found)
                shutil.rmtree(slow)
            runs.append(current)
            print(f"trial {t + 1}/{args.trials}: A/A exit {aa_code}; exits so far: B5 {dict(ab[0.05])}, "
                  f"B20 {dict(ab[0.20])}", flush=True)
    finally:
        for p in busy:
            p.kill()
            p.wait()
        os.chdir(Path(__file__).resolve().parent)
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nprofile {args.profile}, {args.workloads} workloads a run, history {args.history}+ runs, "
          f"{args.trials} trials, {args.load} extra busy processes, {time.time() - started:.0f} s")
    print(f"A/A false-regression rate (compare exits 1): {rate(aa[1], sum(aa.values()))}; "
          f"metrics falsely regressed: {dict(false_metrics)}")
    for extra, counts in ab.items():
        print(f"A/B +{extra:.0%} work a query, detection rate (exit 1): {rate(counts[1], sum(counts.values()))}; "
              f"throughput verdicts: {dict(verdicts[extra])}; metrics regressed: {dict(detecting[extra])}")


if __name__ == "__main__":
    main()
