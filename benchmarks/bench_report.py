"""How long the report takes over a long history, and how big it gets.

Writes N synthetic runs (records shaped like a throughput suite run of the whole zoo: 5 models x
(single-stream + offline at 4 batches), latency samples kept) through the real run store, then times,
each in this one process: loading the runs, building the history (step scan of every series),
comparing the newest run with the one before (bootstrap + Mann-Whitney per record), and rendering
the HTML. Prints the figures and the report sizes; asserts nothing. With ``--run DIR`` it also times
loading and rendering that (real) run directory on its own, the report a standard run gets.

    python benchmarks/bench_report.py [--runs 200] [--samples 400] [--keep DIR] [--run REPORTS/RUN]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pytest_edgeai.report.html import render
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import compare_runs
from pytest_edgeai.results.history import build_history
from pytest_edgeai.results.store import list_runs, load_run


def timed(label: str, fn):
    """Wall time, and this process's CPU time: on a shared host the wall time is the load's too."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    print(f"{label:<44} {time.perf_counter() - t0:8.2f} s wall {time.process_time() - c0:8.2f} s CPU")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--samples", type=int, default=400, help="latency samples per record")
    ap.add_argument("--keep", type=Path, help="write the runs and reports here (and reuse the runs already there) "
                                              "instead of a temporary dir")
    ap.add_argument("--run", type=Path, help="also time the report of this run directory (a real run)")
    args = ap.parse_args()
    if args.run:
        real = timed(f"load {args.run.name}", lambda: load_run(args.run))
        page = timed(f"render HTML of it ({len(real.records)} records)", lambda: render(real))
        print(f"report of {args.run.name}: {len(page.encode()) / 1e6:.2f} MB")
    root = args.keep or Path(tempfile.mkdtemp(prefix="edgeai-bench-report-"))
    root.mkdir(parents=True, exist_ok=True)

    def write():
        for i in range(args.runs):
            slow = 1.2 if i >= args.runs * 3 // 4 else 1.0  # a regression three quarters of the way in
            synthetic.write_run(root / "reports", slow, release=f"v{i // 20}" if i % 20 == 0 else None,
                                started=1_000_000.0 + 3600 * i, seed=i, count=args.samples)

    if len(list_runs(root / "reports")) < args.runs:  # --keep DIR: runs written once, reused after
        timed(f"write {args.runs} runs ({args.samples} samples/record)", write)
    paths = list_runs(root / "reports")[-args.runs:]
    runs = timed("load every run (JSON)", lambda: [load_run(p) for p in paths])
    records = sum(len(r.records) for r in runs)
    history = timed(f"history: {records} records, step scan", lambda: build_history(runs))
    comparison = timed("compare newest with the one before", lambda: compare_runs(runs[-2], runs[-1]))
    html = timed("render HTML (comparison + history)", lambda: render(runs[-1], comparison, history))
    single = timed("render HTML of one run (no history)", lambda: render(runs[-1]))
    (root / "history.html").write_text(html, encoding="utf-8")
    (root / "single.html").write_text(single, encoding="utf-8")
    print(f"series {len(history.series)}, steps {len(history.steps)} "
          f"({len(history.regressions)} regressions), deltas {len(comparison.deltas)} "
          f"({len(comparison.regressions)} regressed)")
    print(f"report with history: {len(html.encode()) / 1e6:.2f} MB; one run: {len(single.encode()) / 1e6:.2f} MB")
    print(f"files under {root}")


if __name__ == "__main__":
    main()
