"""pytest-edgeai: the command line around the run store (devices, report, ...).

Options shared with the pytest plugin (--devices-file, --device, --edgeai-report-dir) come from
options.py, so the two never drift apart. Every subcommand turns an EdgeAIError into one line
on stderr and exit status 2, and so is a path that cannot be read or written.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import EdgeAIError
from .options import BY_DEST

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]) -> Callable[[Command], Command]:
    """Register a subcommand: its help, how it adds its arguments, and the function that runs it."""
    def register(fn: Command) -> Command:
        COMMANDS[name] = (help, arguments, fn)
        return fn
    return register


def shared_option(parser: argparse.ArgumentParser, dest: str, **overrides: Any) -> None:
    """Add one of the plugin's options (same flag, help and default) to a subcommand."""
    opt = BY_DEST[dest]
    kwargs: dict[str, Any] = {"help": opt.help, "default": opt.default, "dest": dest}
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    if opt.kind == "list":
        kwargs["action"] = "append"
        kwargs["default"] = None
    flag = overrides.pop("flag", opt.flag)  # the subcommand's own name for it, where shorter reads better
    kwargs.update(overrides)
    parser.add_argument(flag, **kwargs)


def _devices_args(p: argparse.ArgumentParser) -> None:
    shared_option(p, "devices_file")
    shared_option(p, "device")


@command("devices", "list configured devices and runtimes found, attached or not and why", _devices_args)
def cmd_devices(args: argparse.Namespace) -> int:
    from . import config as config_mod
    from .lab.runners import probe_isolated
    from .options import split_list
    from .report.terminal import format_table
    from .selection import select

    path = Path(args.devices_file) if args.devices_file else Path("devices.toml")
    cfg = config_mod.load(path) if path.is_file() or args.devices_file else config_mod.builtin()
    devices = select(cfg, split_list(args.device) or ["all"], probe_isolated)
    found = probe_isolated(devices)  # a probe that crashes or hangs is one row, not the end of this command
    rows = []
    for d in devices:
        a = found[d.name]
        rows.append([d.name, d.kind, d.backend, a.runtime_version or "-",
                     f"{d.memory_mb:g} MB" if d.memory_mb else "-",
                     "yes" if a.attached else "no", a.reason or ""])
    print(f"devices from {cfg.path or 'built-in default (no devices.toml)'}:")
    for line in format_table(["device", "kind", "backend", "runtime", "memory", "attached", "why not"], rows):
        print(line)
    from .backends.inventory import runtimes

    print("\nruntimes on this machine:")
    for line in format_table(["runtime", "version", "sees"], [[r.name, r.version, r.detail] for r in runtimes()]):
        print(line)
    return 0


def _doctor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("selected", nargs="*", metavar="DEVICE", help="device names or kinds (default: every device)")
    shared_option(p, "devices_file")


@command("doctor", "what this machine lacks to run each device, one line per problem with its fix; exit 1 "
                   "if a named device (or every device of a named kind) cannot run", _doctor_args)
def cmd_doctor(args: argparse.Namespace) -> int:
    from . import config as config_mod
    from .devices import KINDS
    from .doctor import examine, verdict
    from .selection import select

    path = Path(args.devices_file) if args.devices_file else Path("devices.toml")
    cfg = config_mod.load(path) if path.is_file() or args.devices_file else config_mod.builtin()
    exams = [examine(d) for d in select(cfg, args.selected or ["all"])]
    for exam in exams:
        d = exam.device
        print(f"{d.name} ({d.kind}, {d.backend}): {'can run' if exam.can_run else 'CANNOT RUN'}")
        for f in exam.findings:
            print(f"  {f.level}: {f.text}")
    named = {w for w in args.selected if w in cfg.devices}
    kinds = {w for w in args.selected if w in KINDS and w not in cfg.devices}
    return verdict(exams, named or ({e.device.name for e in exams} if not args.selected else set()), kinds)


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directories or 'latest'; several: the last is reported, all form the history")
    p.add_argument("-o", "--output", type=Path, help="where to write the HTML (default: RUN/report.html)")
    p.add_argument("--baseline", metavar="PATH|latest|release:TAG", help="compare the run with this baseline")
    shared_option(p, "devices_file", help="devices.toml whose [tolerances] judge regressions")
    shared_option(p, "edgeai_report_dir")


def _tolerances(devices_file: str | None) -> dict[str, dict[str, float]]:
    from . import config as config_mod

    path = Path(devices_file) if devices_file else Path("devices.toml")
    return config_mod.load(path).tolerances if path.is_file() or devices_file else {}


def _problems(problems: list[str], what: str) -> None:
    """Unreadable records and runs: said on stderr, while every readable record is still used."""
    for problem in problems:
        print(f"pytest-edgeai {what}: warning: {problem}", file=sys.stderr)


@command("report", "render the HTML report of a run (a partial run too), with a history when given several",
         _report_args)
def cmd_report(args: argparse.Namespace) -> int:
    from .report.html import build_report
    from .results.compare import find_run
    from .results.store import resolve_run

    root = Path(args.edgeai_report_dir)
    runs = [resolve_run(r, root) for r in args.runs]
    baseline = find_run(args.baseline, root, exclude=runs[-1]) if args.baseline else None
    report = build_report(runs[-1], args.output, baseline=baseline, history=runs[:-1] or None,
                          tolerances=_tolerances(args.devices_file))
    _problems(report.problems, "report")
    print(f"report: {report.path}")
    return 0


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", metavar="BASE", help="the baseline run: a directory, 'latest' or 'release:TAG'")
    p.add_argument("new", metavar="NEW", help="the run to judge: a directory or 'latest'")
    p.add_argument("--fail-on", metavar="PERCENT",
                   help="one tolerance for every metric, e.g. 5%% (default: devices.toml [tolerances], "
                        "then 5%% throughput, 10%% p99, 10%% otherwise)")
    p.add_argument("--all", action="store_true", help="list every metric, not only what changed")
    shared_option(p, "edgeai_baseline_runs", flag="--runs",
                  help="judge the median of up to K runs of each side's build (the same release, tag or clean git "
                       "commit, the latest ending at BASE and at NEW): a machine episode that slowed one run does "
                       "not move a median of 3 (default: 1)")
    shared_option(p, "devices_file", help="devices.toml whose [tolerances] judge regressions")
    shared_option(p, "edgeai_report_dir")


@command("compare", "compare a run with a baseline; exit 1 on a significant regression beyond tolerance or a "
                    "measurement of the baseline that failed in this run",
         _compare_args)
def cmd_compare(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .results.compare import REGRESSED, find_run, judge_builds, parse_fraction, parse_runs, summary_lines
    from .results.store import load_run

    try:
        fail_on = parse_fraction(args.fail_on) if args.fail_on else None
    except ValueError as exc:
        why = "not a number" if str(exc).startswith("could not convert") else str(exc)
        raise ConfigError([f"--fail-on {args.fail_on}: {why}; give a percentage such as 5% or a fraction "
                           "such as 0.05"]) from None
    runs = parse_runs(args.edgeai_baseline_runs, "--runs")
    root = Path(args.edgeai_report_dir)
    new = load_run(args.new, root)
    base = load_run(find_run(args.base, root, exclude=new.path))
    comparison = judge_builds(base, new, _tolerances(args.devices_file), fail_on, runs)
    shown = (tuple({d.verdict for d in comparison.deltas}) if args.all
             else (REGRESSED, "improved", "changed", "regressed (diagnostic)"))
    for line in summary_lines(comparison, shown):
        print(line)
    if comparison.fails:
        return 1
    if not comparison.deltas:
        print("pytest-edgeai compare: nothing to compare (see the notes above)", file=sys.stderr)
        return 2
    return 0


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories to merge")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="RUN",
                   help="the merged run directory to create")


@command("merge", "merge runs from several benches into one run (records keep their ids)", _merge_args)
def cmd_merge(args: argparse.Namespace) -> int:
    from .results.merge import merge_runs

    path, problems = merge_runs(args.runs, args.output)
    _problems(problems, "merge")
    print(f"merged {len(args.runs)} runs into {path}")
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run directory or 'latest'")
    p.add_argument("--format", choices=("pytest-benchmark",), default="pytest-benchmark")
    p.add_argument("-o", "--output", type=Path, help="the JSON file to write (default: stdout)")
    shared_option(p, "edgeai_report_dir")


@command("export", "export a run for other tools (pytest-benchmark JSON: `pytest-benchmark compare` reads it)",
         _export_args)
def cmd_export(args: argparse.Namespace) -> int:
    import json

    from .results.export import to_pytest_benchmark
    from .results.store import load_run

    run = load_run(args.run, Path(args.edgeai_report_dir))
    _problems(run.problems, "export")
    doc, skipped = to_pytest_benchmark(run)
    for line in skipped:
        print(f"pytest-edgeai export: left out {line}", file=sys.stderr)
    text = json.dumps(doc, indent=1, default=str)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"{len(doc['benchmarks'])} benchmarks written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytest-edgeai", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, arguments, _fn) in COMMANDS.items():
        arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except BrokenPipeError:  # the reader (head, less) stopped reading: end quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 128 + signal.SIGPIPE
    except EdgeAIError as exc:
        print(f"pytest-edgeai {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output path that cannot be written, a run directory that cannot be read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"pytest-edgeai {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
