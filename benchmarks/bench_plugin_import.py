"""What loading the edgeai plugin costs a pytest run that does not use it, with the plugin and without it
(``-p no:edgeai``), timed in fresh processes in one run: ``pytest --version`` (loading the plugin module)
and ``pytest -q`` over one trivial test (which also runs the plugin's pytest_configure and collection hooks).

Run: python benchmarks/bench_plugin_import.py [--rounds 15]
Rounds alternate ABBA (with, without, without, with, ...) so drift on a shared machine hits both alike.
Prints each round's wall times, the median of each, the median of the per-pair differences, and the
spread of the differences (their interquartile range) so a reader sees whether the difference stands
out of the machine's noise. Also prints which heavy modules each variant imported (there should be none
with the plugin either: it imports nothing heavy until an edgeai option, fixture or marker is used).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("numpy", "onnx", "onnxruntime", "scipy", "jinja2", "pytest_edgeai.run", "pytest_edgeai.models")

VARIANTS = {"with plugin": [], "without (-p no:edgeai)": ["-p", "no:edgeai"]}


COMMANDS = {"pytest --version": ["--version"], "pytest -q (one trivial test)": ["-q", "-p", "no:cacheprovider"]}


def pytest_run(args: list[str], cwd: Path, importtime: bool = False) -> tuple[float, str]:
    """Wall seconds of one `python -m pytest ARGS` (fresh interpreter), and its stderr."""
    argv = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "pytest", *args]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start, done.stderr


def heavy_imports(stderr: str) -> list[str]:
    """The heavy packages named in ``python -X importtime``'s report (one line per import, on stderr), each
    with how many of its modules were imported."""
    names = {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    found: dict[str, int] = {}
    for name in names:
        top = next((h for h in HEAVY if name == h or name.startswith(h + ".")), None)
        if top is not None:
            found[top] = found.get(top, 0) + 1
    return [f"{top} ({count} modules)" for top, count in sorted(found.items())]


def compare(command: str, args: list[str], cwd: Path, rounds: int) -> dict[str, object]:
    print(f"== {command}")
    for name, extra in VARIANTS.items():
        pytest_run([*extra, *args], cwd)  # warm the page cache and the .pyc files once, untimed
        heavy = heavy_imports(pytest_run([*extra, *args], cwd, importtime=True)[1])
        print(f"{name}: heavy modules imported: {', '.join(heavy) or 'none'}")
    names = list(VARIANTS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            times[name].append(pytest_run([*VARIANTS[name], *args], cwd)[0])
        print(f"round {i + 1}: " + ", ".join(f"{n} {times[n][-1] * 1e3:.0f} ms" for n in names))
    with_plugin, without = (times[n] for n in names)
    diffs = [a - b for a, b in zip(with_plugin, without)]
    q1, _, q3 = statistics.quantiles(diffs, n=4)
    return {"command": command, "rounds": rounds,
            "median_with_plugin_ms": round(statistics.median(with_plugin) * 1e3, 1),
            "median_without_plugin_ms": round(statistics.median(without) * 1e3, 1),
            "median_paired_difference_ms": round(statistics.median(diffs) * 1e3, 1),
            "paired_difference_iqr_ms": [round(q1 * 1e3, 1), round(q3 * 1e3, 1)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="pairs of runs (each pair: one of each variant)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:  # no ini, no conftest, no devices.toml: an unrelated project
        cwd = Path(tmp)
        (cwd / "test_trivial.py").write_text("def test_trivial():\n    assert 1 + 1 == 2\n")
        results = [compare(command, argv, cwd, args.rounds) for command, argv in COMMANDS.items()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
