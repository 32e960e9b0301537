"""Where a run happened: host, CPU, clocks, Python, runtime versions, the suites' commit."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from .. import __version__
from ..registry import distribution_version

RUNTIMES = ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino", "ai-edge-litert",
            "tflite-runtime", "tensorflow", "tensorflow-cpu", "torch", "tensorrt", "cuda-python",
            "nvidia-ml-py", "mlcommons-loadgen", "scipy")


def cpu_model(root: Path = Path("/")) -> str:
    try:
        for line in (root / "proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_clocks(root: Path = Path("/")) -> dict[str, Any]:
    """Governor and current/max frequency of cpu0, where the kernel exposes them."""
    base = root / "sys/devices/system/cpu/cpu0/cpufreq"
    out: dict[str, Any] = {}
    for key, name in (("governor", "scaling_governor"), ("cur_khz", "scaling_cur_freq"),
                      ("max_khz", "cpuinfo_max_freq")):
        try:
            text = (base / name).read_text().strip()
        except OSError:
            continue
        out[key] = int(text) if text.isdigit() else text
    return out


def git_info(path: Path) -> dict[str, Any]:
    """Commit, dirtiness and tag of the checkout holding ``path``; empty outside a checkout."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "tag": git("describe", "--tags", "--exact-match") or None}


def capture(suites_path: Path | None = None) -> dict[str, Any]:
    """The environment recorded once per run."""
    physical = None
    try:
        cores = {line.split(":")[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("core id")}
        physical = len(cores) or None
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_logical_cores": os.cpu_count(),
        "cpu_physical_cores": physical,
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_clocks": cpu_clocks(),
        "python": platform.python_version(),
        "pytest_edgeai": __version__,
        "runtimes": {name: v for name in RUNTIMES if (v := distribution_version(name))},
        "git": git_info(suites_path) if suites_path else {},
    }
