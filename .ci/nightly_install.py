#!/usr/bin/env python3
"""Install one nightly job's runtimes from the package's own extras, or check that every job's install resolves.

The jobs live in .github/nightly-jobs.json (the workflow's matrix comes from the same file), so what CI checks
is what the runners install:

    python3 .ci/nightly_install.py gpu --venv .venv     # on a runner: pip install -e '.[extras]', then fix-ups
    python3 .ci/nightly_install.py --check              # in CI: pip install --dry-run for every job, in parallel

A job: ``extras`` (comma-separated), ``python`` (the runner's version; the check resolves for it), optional
``platform`` (pip platform tags for the check, e.g. aarch64 for Jetson), ``replace`` (distributions to uninstall
after the extras: onnxruntime, which onnxruntime-gpu shadows), ``no_deps`` (requirements installed afterwards
with --force-reinstall --no-deps), ``extra_index`` (another package index, e.g. NVIDIA's for the TensorRT
libraries) and ``index_only`` (what only that index has: when this machine cannot reach it, the check leaves
those out and says so). The check expands the extras from pyproject.toml into plain requirements and
resolves them with --only-binary=:all: for the job's Python and platform, with --ignore-installed, so a pin that
cannot be installed there fails here.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (the ncs2 and jetson runners): installing needs no tomllib, --check does
    tomllib = None

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / ".github" / "nightly-jobs.json"
TIMEOUT_S = 600


def jobs() -> dict[str, dict]:
    return {j["accelerator"]: j for j in json.loads(JOBS.read_text())}


def requirements(extras: str, project: dict | None = None) -> list[str]:
    """The base dependencies and every requirement of ``extras``, self-references (pytest-edgeai[x]) expanded."""
    if project is None:
        if tomllib is None:
            raise SystemExit("nightly_install: --check needs Python >= 3.11 (tomllib)")
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = project["name"]
    optional = project.get("optional-dependencies", {})
    out: list[str] = list(project.get("dependencies", []))
    todo, seen = [e.strip() for e in extras.split(",") if e.strip()], set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            raise SystemExit(f"nightly_install: extra [{extra}] is not in pyproject.toml")
        for req in optional[extra]:
            m = re.fullmatch(rf"{re.escape(name)}\[([^\]]+)\]", req.strip())
            if m:
                todo.extend(e.strip() for e in m.group(1).split(","))
            elif req not in out:
                out.append(req)
    return out


def reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).close()
    except OSError:
        return False
    return True


def requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()


def check_commands(job: dict, notes: list[str]) -> list[list[str]]:
    target = ["--python-version", job["python"], "--only-binary=:all:"]
    for tag in job.get("platform", []):
        target += ["--platform", tag]
    reqs = requirements(job["extras"])
    if job.get("extra_index"):
        if reachable(job["extra_index"]):
            target += ["--extra-index-url", job["extra_index"]]
        else:
            left_out = [r for r in reqs if requirement_name(r) in job.get("index_only", [])]
            reqs = [r for r in reqs if r not in left_out]
            notes.append(f"{job['extra_index']} is not reachable from here: not checked: {', '.join(left_out)}")
    base = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--report", "-", *target]
    commands = [[*base, *reqs]]
    if job.get("no_deps"):
        commands.append([*base, "--no-deps", *job["no_deps"]])
    return commands


def check_one(job: dict) -> tuple[str, str | None]:
    notes: list[str] = []
    for cmd in check_commands(job, notes):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return job["accelerator"], f"pip did not resolve within {TIMEOUT_S} s"
        if done.returncode != 0:
            errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")] or done.stderr.splitlines()[-3:]
            return job["accelerator"], " | ".join(errors)
        resolved = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                    for i in json.loads(done.stdout)["install"]}
        print(f"nightly {job['accelerator']} (Python {job['python']}): {len(resolved)} distributions resolve"
              + "".join(f", {k} {resolved[k]}"
                        for k in ("openvino", "tensorrt-cu12-bindings", "tensorflow", "onnxruntime-gpu",
                                  "tflite-runtime", "cuda-python") if k in resolved))
    for note in notes:
        print(f"nightly {job['accelerator']}: warning: {note}")
    return job["accelerator"], None


def check(selected: list[str]) -> int:
    everything = jobs()
    with ThreadPoolExecutor(max_workers=len(selected) or 1) as pool:
        results = list(pool.map(check_one, [everything[a] for a in selected]))
    failed = [(a, why) for a, why in results if why]
    for accelerator, why in failed:
        print(f"nightly {accelerator}: its install does not resolve: {why}", file=sys.stderr)
    return 1 if failed else 0


def install(job: dict, venv: Path) -> int:
    python = str(venv / "bin" / "python")
    steps = [[python, "-m", "pip", "install", "--upgrade", "pip"],
             [python, "-m", "pip", "install", "-e", f"{ROOT}[{job['extras']}]",
              *(["--extra-index-url", job["extra_index"]] if job.get("extra_index") else [])]]
    if job.get("replace"):
        steps.append([python, "-m", "pip", "uninstall", "-y", *job["replace"]])
    if job.get("no_deps"):
        steps.append([python, "-m", "pip", "install", "--force-reinstall", "--no-deps", *job["no_deps"]])
    for step in steps:
        print("+ " + " ".join(step), flush=True)
        if subprocess.run(step).returncode != 0:
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("accelerators", nargs="*", help="jobs (default with --check: all)")
    parser.add_argument("--check", action="store_true", help="dry-run every job's install instead of installing")
    parser.add_argument("--venv", type=Path, default=Path(".venv"), help="the virtual environment to install into")
    args = parser.parse_args(argv)
    known = jobs()
    unknown = [a for a in args.accelerators if a not in known]
    if unknown:
        print(f"nightly_install: no job {', '.join(unknown)}; jobs: {', '.join(known)}", file=sys.stderr)
        return 2
    if args.check:
        return check(args.accelerators or list(known))
    if len(args.accelerators) != 1:
        print("nightly_install: name one job to install", file=sys.stderr)
        return 2
    return install(known[args.accelerators[0]], args.venv)


if __name__ == "__main__":
    sys.exit(main())
