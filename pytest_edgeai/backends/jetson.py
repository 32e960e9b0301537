"""Jetson board identity and power state: which board and L4T release, the nvpmodel mode and whether
jetson_clocks pinned the clocks.

Both change throughput several-fold, so every Jetson result records them. Read through the
vendor's commands (``nvpmodel -q``, ``jetson_clocks --show``) with a timeout; a command that is
missing or fails is recorded as such, never guessed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
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
    found = [re.search(r"MinFreq=(\d+)\s+MaxFreq=(\d+)", line) for line in out.splitlines()
             if re.match(r"\s*(cpu\d+:|GPU\b)", line)]
    pairs = [m.groups() for m in found if m]  # EMC is left out: jetson_clocks overrides it, min stays low
    if not pairs:
        return {"jetson_clocks": None, "jetson_clocks_error": "jetson_clocks --show printed no MinFreq/MaxFreq"}
    return {"jetson_clocks": all(lo == hi for lo, hi in pairs)}


def state() -> dict[str, Any]:
    return {**power_mode(), **clocks_pinned()}


# Jetson boards by their device-tree model (/proc/device-tree/model, NVIDIA Jetson Linux Developer Guide)
# and the last JetPack each can run (JetPack archive / release notes): the package needs Python >= 3.10,
# which only JetPack 6 (L4T R36, Ubuntu 22.04, Python 3.10, TensorRT 8.6 in 6.0, 10.3 in 6.1/6.2) and
# later ship, and JetPack 6 runs only on the Orin family (JetPack 7 adds Thor).
UNSUPPORTED_BOARDS = {
    "Nano": "its last JetPack is 4.6 (L4T R32, Python 3.6, TensorRT 8.2)",
    "TX2": "its last JetPack is 4.6 (L4T R32, Python 3.6, TensorRT 8.2)",
    "TX1": "its last JetPack is 4.6 (L4T R32, Python 3.6, TensorRT 8.2)",
    "Xavier": "its last JetPack is 5.1 (L4T R35, Python 3.8, TensorRT 8.5)",
}
SUPPORTED_L4T = 36  # JetPack 6 = L4T R36
SUPPORTED_TEXT = "Orin (AGX Orin, Orin NX, Orin Nano) on JetPack 6 (L4T R36) or later, or Thor on JetPack 7"


def board(root: Path = Path("/")) -> dict[str, Any]:
    """{'board': 'NVIDIA Jetson Orin Nano Developer Kit', 'l4t': '36.4.3'} from the device tree and
    /etc/nv_tegra_release ("# R36 (release), REVISION: 4.3, ..."); missing files are left out."""
    out: dict[str, Any] = {}
    try:
        out["board"] = (root / "proc/device-tree/model").read_bytes().rstrip(b"\x00\n").decode(errors="replace")
    except OSError:
        pass
    try:
        release = (root / "etc/nv_tegra_release").read_text()
    except OSError:
        return out
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release)
    if m:
        out["l4t"] = f"{m.group(1)}.{m.group(2)}"
    return out


def board_problem(found: dict[str, Any], wanted: str) -> str | None:
    """Why this host cannot run a Jetson device (not a Jetson, another board, an unsupported one), or None."""
    model = found.get("board")
    if not model or "jetson" not in model.lower() and "nvidia" not in model.lower():
        return (f"not a Jetson: /proc/device-tree/model is {model!r}" if model else
                "not a Jetson: no /proc/device-tree/model") + f" (supported: {SUPPORTED_TEXT})"
    if wanted and wanted.lower() not in model.lower():
        return f"this board is {model!r}, not the configured {wanted!r} (options.board): run it on that board"
    if "orin" not in model.lower() and "thor" not in model.lower():
        for name, why in UNSUPPORTED_BOARDS.items():
            if name.lower() in model.lower():
                return (f"{model} is not supported: {why}, and pytest-edgeai needs Python >= 3.10 "
                        f"(supported: {SUPPORTED_TEXT})")
    l4t = found.get("l4t")
    if l4t and int(l4t.split(".")[0]) < SUPPORTED_L4T:
        return (f"{model} runs L4T R{l4t} (JetPack 5 or older, Python <= 3.8): flash JetPack 6 (L4T R36) or "
                f"later (supported: {SUPPORTED_TEXT})")
    return None
