"""Coral EdgeTPU: finding attached TPUs, loading the libedgetpu delegate, compiling models.

The vendor boundary is small and mocked in the tests: sysfs (which TPUs are plugged in), the
delegate loader (``load_delegate`` from LiteRT/tflite_runtime, or Coral's pycoral), the
``edgetpu_compiler`` executable, and the dpkg database (which libedgetpu build is installed:
libedgetpu1-std runs the TPU at reduced clock, "throttled"; libedgetpu1-max at full clock, "direct").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..errors import BackendError

# Coral USB Accelerator: Global Unichip 1a6e:089a before its firmware is loaded, Google 18d1:9302 after.
USB_IDS = {("1a6e", "089a"), ("18d1", "9302")}
PCI_CLASS_DIR = "class/apex"
COMPILER = "edgetpu_compiler"
COMPILE_TIMEOUT_S = 600


@dataclass(frozen=True)
class TPU:
    """One attached EdgeTPU, named as libedgetpu names it ('usb:0', 'pci:0')."""

    name: str
    type: str  # usb | pci
    path: str  # sysfs path: what identifies it on this host


def library_name(platform: str | None = None) -> str:
    platform = platform or sys.platform
    if platform == "darwin":
        return "libedgetpu.1.dylib"
    if platform.startswith("win"):
        return "edgetpu.dll"
    return "libedgetpu.so.1"


def list_tpus(sysfs_root: str | Path = "/sys") -> list[TPU]:
    """TPUs attached now, from sysfs (USB vendor/product ids; PCIe /sys/class/apex)."""
    root = Path(sysfs_root)
    found: list[TPU] = []
    usb = root / "bus" / "usb" / "devices"
    if usb.is_dir():
        for dev in sorted(usb.iterdir()):
            ids = (_read(dev / "idVendor"), _read(dev / "idProduct"))
            if ids in USB_IDS:
                found.append(TPU(f"usb:{sum(t.type == 'usb' for t in found)}", "usb", str(dev)))
    apex = root / PCI_CLASS_DIR
    if apex.is_dir():
        for i, dev in enumerate(sorted(apex.iterdir())):
            found.append(TPU(f"pci:{i}", "pci", str(dev)))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text().strip().lower()
    except OSError:
        return ""


def coral_edgetpu_module():
    """Coral's pycoral.utils.edgetpu when that is what is installed, else None.

    The PyPI project named 'pycoral' is unrelated to Coral: it is recognised by its contents.
    """
    try:
        from pycoral.utils import edgetpu
    except Exception:  # absent, or the unrelated package
        return None
    return edgetpu if all(hasattr(edgetpu, f) for f in ("make_interpreter", "list_edge_tpus", "load_edgetpu_delegate")) else None


def load_delegate(loader, device: str, tpus: list[TPU], library: str | None = None):
    """The libedgetpu delegate bound to ``device``; a clear BackendError when it cannot be had.

    libedgetpu refuses a TPU another process holds and raises the same ValueError as for a
    missing one, so sysfs decides which of the two messages applies.
    """
    library = library or library_name()
    try:
        return loader(library, {"device": device})
    except (ValueError, OSError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if any(t.name == device for t in tpus):
            raise BackendError(f"EdgeTPU {device} is in use by another process, or its driver refused it "
                               f"({library}: {detail}); one process owns a TPU: stop the other one") from None
        attached = ", ".join(t.name for t in tpus) or "none"
        raise BackendError(f"EdgeTPU {device} is not attached (attached: {attached}); or {library} is not "
                           f"installed: install libedgetpu1-std or libedgetpu1-max ({detail})") from None


def loaded_library(maps: str | Path = "/proc/self/maps") -> str | None:
    """The path of the libedgetpu this process mapped, once the delegate is loaded."""
    try:
        text = Path(maps).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        path = line.split()[-1] if line.split() else ""
        if "libedgetpu" in path or path.endswith("edgetpu.dll"):
            return path
    return None


def library_variant(path: str | None, dpkg_info: str | Path = "/var/lib/dpkg/info") -> str:
    """'max (direct, full clock)', 'std (throttled, reduced clock)' or 'unknown' for a loaded libedgetpu."""
    if not path:
        return "unknown"
    real = os.path.realpath(path)
    info = Path(dpkg_info)
    for variant, words in (("max", "direct, full clock"), ("std", "throttled, reduced clock")):
        if info.is_dir():
            for listing in info.glob(f"libedgetpu1-{variant}*.list"):
                paths = set(listing.read_text().split())
                if path in paths or real in paths:
                    return f"{variant} ({words})"
        if f"libedgetpu1-{variant}" in real or f"/{variant}/" in real:
            return f"{variant} ({words})"
    return "unknown"


def compile_for_edgetpu(models: list[Path], cache_dir: Path, compiler: str | None = None,
                        timeout_s: float = COMPILE_TIMEOUT_S) -> list[Path]:
    """``*_edgetpu.tflite`` for each int8 model; several models are co-compiled together, so they
    share the TPU's 8 MB parameter cache. Cached by the inputs' bytes and the compiler's version."""
    exe = compiler or shutil.which(COMPILER)
    if not exe:
        raise BackendError(f"{COMPILER} is not on PATH: install it (Coral's apt repository, package "
                           f"edgetpu-compiler, x86-64 Linux only) or give a *_edgetpu.tflite model")
    version = _run([exe, "--version"], 30).strip()
    digest = hashlib.sha256(version.encode())
    for m in models:
        digest.update(Path(m).read_bytes())
    out = Path(cache_dir) / f"edgetpu-{digest.hexdigest()[:16]}"
    results = [out / f"{Path(m).stem}_edgetpu.tflite" for m in models]
    if all(r.exists() for r in results):
        return results
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not all(r.exists() for r in results):
            work = Path(tempfile.mkdtemp(dir=out.parent, prefix=".edgetpu-"))
            _run([exe, "-s", "-o", str(work), *map(str, models)], timeout_s)
            missing = [r.name for r in results if not (work / r.name).exists()]
            if missing:
                raise BackendError(f"{COMPILER} wrote no {', '.join(missing)} (see its log in {work})")
            shutil.rmtree(out, ignore_errors=True)
            os.replace(work, out)
    return results


def _run(cmd: list[str], timeout_s: float) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BackendError(f"{' '.join(cmd)} did not finish in {timeout_s:g} s") from None
    except OSError as exc:
        raise BackendError(f"{cmd[0]} cannot run: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BackendError(f"{' '.join(cmd)} failed (exit {done.returncode}): {tail[0]}")
    return done.stdout


def describe(tpus: list[TPU]) -> list[dict[str, Any]]:
    return [{"name": t.name, "type": t.type, "path": t.path} for t in tpus]
