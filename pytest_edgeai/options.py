"""Every option, defined once: the pytest plugin and the CLI both build theirs from here.

Each option is also an ini key (same name with dashes as underscores, without the leading
dashes), so a lab pins its choices in pytest.ini / pyproject.toml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    default: Any = None
    kind: str = "string"  # "string", "bool", "list"
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def ini(self) -> str:
        return self.dest


OPTIONS: tuple[Option, ...] = (
    Option("--device", "devices to characterise: names or kinds from devices.toml, repeatable and "
           "comma-separated; 'auto' = every configured device that is attached; 'all'",
           default=["cpu"], kind="list", metavar="NAME"),
    Option("--devices-file", "the lab's inventory and claims (default: devices.toml in the rootdir; "
           "without one, a built-in device 'cpu' on onnxruntime)", metavar="PATH"),
    Option("--edgeai-profile", "how long to measure: quick (about 1 s a measurement), standard, "
           "full (MLPerf-like: at least 60 s and 1024 queries)", default="standard",
           choices=("quick", "standard", "full")),
    Option("--edgeai-report-dir", "where runs and their HTML reports are written", default="reports",
           metavar="DIR"),
    Option("--edgeai-strict", "a selected device that is not attached is an error, not a skip",
           default=False, kind="bool"),
    Option("--edgeai-model", "add a model file (.onnx, ...) to the suites; repeatable",
           default=[], kind="list", metavar="PATH"),
    Option("--edgeai-batches", "the offline batch sweep, comma-separated", default=["1", "2", "4", "8"],
           kind="list", metavar="B,B,..."),
    Option("--edgeai-cache-dir", "where built zoo models are cached (default: $EDGEAI_CACHE_DIR or "
           "~/.cache/pytest-edgeai/models)", metavar="DIR"),
    Option("--edgeai-no-isolation", "measure in the pytest process instead of an isolated worker process "
           "per device (for debugging a backend: a runtime crash then takes pytest down and hangs are not "
           "cut off)", default=False, kind="bool"),
    Option("--edgeai-timeout", "seconds one measurement (model load + measure) may take before it counts "
           "as a hang: the worker is killed and the device marked lost (default: the profile's timeout_s)",
           metavar="SECONDS"),
    Option("--edgeai-baseline", "compare this run with a baseline run: a run directory, 'latest' (the "
           "newest earlier run in the report dir) or 'release:TAG' (the newest run of that release)",
           metavar="PATH|latest|release:TAG"),
    Option("--edgeai-baseline-runs", "judge each side of --edgeai-baseline as the median of up to K runs of its "
           "build (the same release, tag or clean git commit, the latest ending at the baseline and at this "
           "run): a machine episode that slowed one run does not move a median of 3", default="1", metavar="K"),
    Option("--edgeai-release", "the release this run measures (default: the checkout's exact git tag)",
           metavar="TAG"),
    Option("--edgeai-no-canary", "skip the reference workload read right before and after each measurement "
           "(10 ms each), by which a comparison tells the machine's drift from a regression",
           default=False, kind="bool"),
    Option("--edgeai-fail-on-regression", "fail the session when a metric regressed significantly "
           "beyond its tolerance against --edgeai-baseline", default=False, kind="bool"),
)

BY_DEST = {o.dest: o for o in OPTIONS}


def split_list(values: list[str] | str | None) -> list[str]:
    """'a,b' and ['a', 'b,c'] alike to a flat list, order kept, duplicates dropped."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        for part in str(value).replace("\n", ",").split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out
