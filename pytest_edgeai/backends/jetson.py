"""Jetson power state: the nvpmodel mode and whether jetson_clocks pinned the clocks.

Both change throughput several-fold, so every Jetson result records them. Read through the
vendor's commands (``nvpmodel -q``, ``jetson_clocks --show``) with a timeout; a command that is
missing or fails is recorded as such, never guessed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

TIMEOUT_S = 5.0


def _output(cmd: list[str]) -> tuple[str | None, str]:
    """(stdout, '') or (None, why not)."""
    exe = shutil.which(cmd[0])
    if exe is None:
        return None, f"{cmd[0]} not on PATH"
    try:
        done = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"{' '.join(cmd)} timed out after {TIMEOUT_S:g} s"
    except OSError as exc:
        return None, f"{' '.join(cmd)}: {exc}"
    if done.returncode != 0:
        return None, f"{' '.join(cmd)} exited {done.returncode}: {(done.stderr or done.stdout).strip()[:200]}"
    return done.stdout, ""


def power_mode() -> dict[str, Any]:
    """{'nvpmodel_mode': 'MAXN', 'nvpmodel_id': 0} from ``nvpmodel -q``, or the reason it is unknown."""
    out, why = _output(["nvpmodel", "-q"])
    if out is None:
        return {"nvpmodel_mode": None, "nvpmodel_error": why}
    name = re.search(r"NV Power Mode:\s*(\S+)", out)
    ident = re.search(r"^\s*(\d+)\s*$", out, re.MULTILINE)
    return {"nvpmodel_mode": name.group(1) if name else out.strip().splitlines()[0],
            "nvpmodel_id": int(ident.group(1)) if ident else None}


def clocks_pinned() -> dict[str, Any]:
    """Whether jetson_clocks pinned CPU/GPU/EMC to their maximum, from ``jetson_clocks --show``.

    jetson_clocks sets each CPU's MinFreq to its MaxFreq; the clocks are pinned when every
    CPU line it shows has MinFreq == MaxFreq (and the GPU line likewise when shown).
    """
    out, why = _output(["jetson_clocks", "--show"])
    if out is None:
        return {"jetson_clocks": None, "jetson_clocks_error": why}
    pairs = [re.search(r"MinFreq=(\d+)\s+MaxFreq=(\d+)", line) for line in out.splitlines()
             if re.match(r"\s*(cpu\d+:|GPU\b)", line)]
    pairs = [m.groups() for m in pairs if m]  # EMC is left out: jetson_clocks overrides it, min stays low
    if not pairs:
        return {"jetson_clocks": None, "jetson_clocks_error": "jetson_clocks --show printed no MinFreq/MaxFreq"}
    return {"jetson_clocks": all(lo == hi for lo, hi in pairs)}


def state() -> dict[str, Any]:
    return {**power_mode(), **clocks_pinned()}
