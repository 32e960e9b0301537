"""Coral EdgeTPU: finding attached TPUs, the runtime pairing, loading the delegate, compiling models.

The vendor boundary is small and faked in the tests: sysfs (which TPUs are plugged in), the
delegate loader (``load_delegate`` from tflite_runtime, or Coral's pycoral), the ``edgetpu_compiler``
executable, and the dpkg database (which libedgetpu build is installed: libedgetpu1-std runs the TPU
at reduced clock, "throttled"; libedgetpu1-max at full clock, "direct").

Pairing: libedgetpu is a TFLite delegate compiled against one TensorFlow Lite version's C++ ABI. The
official build (16.0, Coral's apt repository) is built against TensorFlow 2.5 and runs only inside
tflite_runtime 2.5.x (Coral: "the tflite_runtime version must match the TensorFlow version libedgetpu was
built with"); loaded into another interpreter (ai-edge-litert, a newer tflite_runtime, tf.lite) the model
fails with "Node number N (EdgeTpuDelegateForCustomOp) failed to prepare". Rebuilt libedgetpu packages
name their TensorFlow version in the package version (e.g. 16.0tf2.17.1), and need that tflite_runtime.

Compiling (coral.ai/docs/edgetpu/compiler): ``edgetpu_compiler -s -o DIR a.tflite b.tflite`` co-compiles
the models so they share the 8 MB parameter cache, writes ``<name>_edgetpu.tflite`` and ``<name>_edgetpu.log``
each, and prints how many operations map to the Edge TPU (the rest run on the CPU) and the on-chip and
off-chip memory the parameters take. Tensors must have static sizes; the compiler rejects dynamic ones.
"""

from __future__ import annotations

import ctypes.util
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..errors import BackendError

# Coral USB Accelerator: Global Unichip 1a6e:089a before its firmware is loaded, Google 18d1:9302 after.
USB_IDS = {("1a6e", "089a"), ("18d1", "9302")}
PCI_CLASS_DIR = "class/apex"
COMPILER = "edgetpu_compiler"
COMPILE_TIMEOUT_S = 600
DPKG_STATUS = Path("/var/lib/dpkg/status")
RUNTIME_PACKAGES = ("libedgetpu1-std", "libedgetpu1-max")
OFFICIAL_TF = "2.5"  # libedgetpu 16.0 from Coral's apt repository is built against TensorFlow 2.5
INSTALL_RUNTIME = ("install the Edge TPU runtime: sudo apt-get install libedgetpu1-std (Coral's apt repository, "
                   "https://coral.ai/software/#edgetpu-runtime)")
MAPPED = "Mapped to Edge TPU"


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


def coral_edgetpu_module() -> Any:
    """Coral's pycoral.utils.edgetpu when that is what is installed, else None.

    The PyPI project named 'pycoral' is unrelated to Coral: it is recognised by its contents.
    """
    try:
        from pycoral.utils import edgetpu
    except Exception:  # absent, or the unrelated package
        return None
    return (edgetpu if all(hasattr(edgetpu, f) for f in ("make_interpreter", "list_edge_tpus", "load_edgetpu_delegate"))
            else None)


def load_delegate(loader: Any, device: str, tpus: list[TPU], library: str | None = None) -> Any:
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


def runtime_package(status: Path | None = None) -> tuple[str, str] | None:
    """(package, version) of the installed libedgetpu Debian package, from dpkg's status file; None if none."""
    try:
        text = (status or DPKG_STATUS).read_text(errors="replace")
    except OSError:
        return None
    for stanza in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.MULTILINE))
        name = fields.get("Package", "")
        if name in RUNTIME_PACKAGES and "installed" in fields.get("Status", "").split():
            return name, fields.get("Version", "")
    return None


def find_runtime() -> str | None:
    """Where the loader finds libedgetpu (ldconfig's cache), or None."""
    return ctypes.util.find_library("edgetpu")


def tensorflow_of(package_version: str) -> str:
    """The TensorFlow major.minor a libedgetpu package was built against: '16.0tf2.17.1' -> '2.17'."""
    m = re.search(r"tf(\d+\.\d+)", package_version)
    return m.group(1) if m else OFFICIAL_TF


def pairing_problem(interpreter: str, interpreter_version: str | None, package: tuple[str, str] | None) -> str | None:
    """Why this interpreter cannot host the installed libedgetpu (wrong ABI), or None when it can."""
    if package is None:
        return None  # not from a Debian package: nothing names the TensorFlow it was built against
    name, version = package
    needed = tensorflow_of(version)
    have = interpreter_version or "?"
    if interpreter.startswith("tflite_runtime") and have.startswith(needed + "."):
        return None
    python = ("; Coral's tflite_runtime 2.5.0.post1 wheels exist for Python 3.6-3.9 only, so on a newer Python "
              "install a libedgetpu rebuilt for a newer TensorFlow with its matching tflite_runtime"
              if needed == OFFICIAL_TF and sys.version_info >= (3, 10) else "")
    return (f"{name} {version} is built against TensorFlow {needed}'s TFLite ABI and needs tflite_runtime "
            f"{needed}.x; this process would load it into {interpreter} {have}, where Edge TPU models fail with "
            f"'EdgeTpuDelegateForCustomOp failed to prepare': pip install 'tflite-runtime=={needed}.*'{python}")


@dataclass(frozen=True)
class Compiled:
    """A compiled model and what the compiler said about it: ops on the TPU, parameter memory."""

    path: Path
    report: dict[str, Any] = field(default_factory=dict)


SIZE = re.compile(r"([\d.]+)\s*([KMG]?i?B)")
SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9}


def _bytes(text: str) -> int | None:
    m = SIZE.search(text)
    return int(float(m.group(1)) * SIZE_UNITS.get(m.group(2), 1)) if m else None


def parse_report(stdout: str, log: str, model: str) -> dict[str, Any]:
    """The compiler's report on one model: its section of stdout and its operation log.

    stdout (per model, after "Input model: <path>"): "On-chip memory used for caching model parameters",
    "Off-chip memory used for streaming uncached model parameters", "Total number of operations",
    "Number of operations that will run on Edge TPU: N"; the log: the "Operator Count Status" table.
    """
    section = stdout
    starts = [m.start() for m in re.finditer(r"^Input(?: model)?: ", stdout, re.MULTILINE)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(stdout)
        first = stdout[start:end].splitlines()[0]
        if Path(first.split(":", 1)[1].strip()).stem == Path(model).stem:
            section = stdout[start:end]
    report: dict[str, Any] = {}
    for key, label in (("on_chip_parameter_bytes", "On-chip memory used for caching model parameters"),
                       ("off_chip_parameter_bytes", "Off-chip memory used for streaming uncached model parameters")):
        m = re.search(re.escape(label) + r":\s*(\S+)", section)
        if m and _bytes(m.group(1)) is not None:
            report[key] = _bytes(m.group(1))
    rows = []
    for text in (log, section):
        table = text.split("Operator", 1)[1] if re.search(r"^Operator\s+Count\s+Status", text, re.MULTILINE) else ""
        rows = [(op, int(n), status.strip()) for op, n, status in
                re.findall(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(.+)$", table, re.MULTILINE)]
        if rows:
            break
    on_tpu = re.search(r"Number of operations that will run on Edge TPU:\s*(\d+)", section)
    total = re.search(r"Total number of operations:\s*(\d+)", section)
    if rows:
        report["operators"] = [{"op": op, "count": n, "status": status} for op, n, status in rows]
    report["ops_on_tpu"] = int(on_tpu.group(1)) if on_tpu else sum(n for _, n, st in rows if st == MAPPED)
    report["ops_total"] = int(total.group(1)) if total else sum(n for _, n, _ in rows)
    if report["ops_total"]:
        report["ops_on_tpu_fraction"] = report["ops_on_tpu"] / report["ops_total"]
    return report


def compile_for_edgetpu(models: list[Path], cache_dir: Path, compiler: str | None = None,
                        timeout_s: float = COMPILE_TIMEOUT_S) -> list[Compiled]:
    """``*_edgetpu.tflite`` for each int8 model, with the compiler's report on it; several models are
    co-compiled together, so they share the TPU's 8 MB parameter cache. Cached by the inputs' bytes and
    the compiler's version. A model of which nothing maps to the TPU is refused: it would run on the CPU."""
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
    if not all(r.exists() for r in results):
        out.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(out) + ".lock"):
            if not all(r.exists() for r in results):
                work = Path(tempfile.mkdtemp(dir=out.parent, prefix=".edgetpu-"))
                stdout = _run([exe, "-s", "-o", str(work), *map(str, models)], timeout_s)
                missing = [r.name for r in results if not (work / r.name).exists()]
                if missing:
                    raise BackendError(f"{COMPILER} wrote no {', '.join(missing)} (see its log in {work})")
                reports = {}
                for m in models:
                    log = work / f"{Path(m).stem}_edgetpu.log"
                    reports[Path(m).stem] = {"compiler": version, **parse_report(
                        stdout, log.read_text(errors="replace") if log.exists() else "", str(m))}
                (work / "reports.json").write_text(json.dumps(reports, indent=1))
                shutil.rmtree(out, ignore_errors=True)
                os.replace(work, out)
    reports = json.loads((out / "reports.json").read_text()) if (out / "reports.json").exists() else {}
    compiled = [Compiled(r, reports.get(Path(m).stem, {})) for m, r in zip(models, results)]
    for m, c in zip(models, compiled):
        if c.report.get("ops_total") and not c.report.get("ops_on_tpu"):
            why = next((o["status"] for o in c.report.get("operators", []) if o["status"] != MAPPED), "no reason given")
            raise BackendError(f"{COMPILER} mapped 0 of {c.report['ops_total']} operations of {Path(m).name} to the "
                               f"Edge TPU ({why}): it would run entirely on the CPU; give a full-integer int8 model")
    return compiled


def _run(cmd: list[str], timeout_s: float) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BackendError(f"{' '.join(cmd)} did not finish in {timeout_s:g} s") from None
    except OSError as exc:
        raise BackendError(f"{cmd[0]} cannot run: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        hint = (": the model has dynamic-size tensors (a free batch): convert it with a fixed batch"
                if "dynamic" in tail[0].lower() else "")
        raise BackendError(f"{' '.join(cmd)} failed (exit {done.returncode}): {tail[0]}{hint}")
    return done.stdout


def describe(tpus: list[TPU]) -> list[dict[str, Any]]:
    return [{"name": t.name, "type": t.type, "path": t.path} for t in tpus]
