"""pytest-edgeai: the command line around the run store (devices, report, ...).

Options shared with the pytest plugin (--devices-file, --device, --edgeai-report-dir) come from
options.py, so the two never drift apart. Every subcommand turns an EdgeAIError into one line
on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import EdgeAIError
from .options import BY_DEST

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: its help, how it adds its arguments, and the function that runs it."""
    def register(fn: Command) -> Command:
        COMMANDS[name] = (help, arguments, fn)
        return fn
    return register


def shared_option(parser: argparse.ArgumentParser, dest: str, **overrides) -> None:
    """Add one of the plugin's options (same flag, help and default) to a subcommand."""
    opt = BY_DEST[dest]
    kwargs = {"help": opt.help, "default": opt.default, "dest": dest}
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    if opt.kind == "list":
        kwargs["action"] = "append"
        kwargs["default"] = None
    kwargs.update(overrides)
    parser.add_argument(opt.flag, **kwargs)


def _devices_args(p: argparse.ArgumentParser) -> None:
    shared_option(p, "devices_file")
    shared_option(p, "device")


@command("devices", "list configured devices and runtimes found, attached or not and why", _devices_args)
def cmd_devices(args: argparse.Namespace) -> int:
    from . import config as config_mod
    from .devices import probe, select
    from .options import split_list
    from .report.terminal import format_table

    path = Path(args.devices_file) if args.devices_file else Path("devices.toml")
    cfg = config_mod.load(path) if path.is_file() or args.devices_file else config_mod.builtin()
    devices = select(cfg, split_list(args.device) or ["all"])
    rows = []
    for d in devices:
        a = probe(d)
        rows.append([d.name, d.kind, d.backend, a.runtime_version or "-",
                     f"{d.memory_mb:g} MB" if d.memory_mb else "-",
                     "yes" if a.attached else "no", a.reason or ""])
    print(f"devices from {cfg.path or 'built-in default (no devices.toml)'}:")
    for line in format_table(["device", "kind", "backend", "runtime", "memory", "attached", "why not"], rows):
        print(line)
    return 0


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run directory, or 'latest'")
    p.add_argument("-o", "--output", type=Path, help="where to write the HTML (default: RUN/report.html)")
    shared_option(p, "edgeai_report_dir")


@command("report", "render the HTML report of a run (a partial run too)", _report_args)
def cmd_report(args: argparse.Namespace) -> int:
    from .report.html import write_report
    from .results.store import resolve_run

    path = write_report(resolve_run(args.run, Path(args.edgeai_report_dir)), args.output)
    print(f"report: {path}")
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
    except EdgeAIError as exc:
        print(f"pytest-edgeai {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
