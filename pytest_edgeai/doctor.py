"""``pytest-edgeai doctor``: what a bench lacks to run each configured device, one line per problem with
the command that fixes it, before a nightly spends hours finding out.

For each device: the runtime's installed version against the range the package's extras pin (the package's own
metadata), the backend's probe (delegate, driver, board, attached), what the device's backend additionally
needs (onnxruntime-gpu shadowed by onnxruntime and the CUDA major its build needs, cuda-python's CUDA major
against TensorRT's, the EdgeTPU compiler), and whether its power meter can be read (RAPL permissions,
jetson_clocks needing root). An error means the device cannot run; a problem (an unreadable meter) costs some
tests (they skip with the reason) but not the device; notes say what is there.
"""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass, field
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement

from .backends import jetson, ort_gpu
from .backends.base import probe
from .backends.edgetpu import COMPILER
from .backends.litert import is_edgetpu
from .backends.openvino import targets
from .backends.tensorrt import find_trtexec
from .devices import Device
from .energy import make_meter
from .errors import EdgeAIError, MeterUnavailable
from .registry import distribution_version

PACKAGE = "pytest-edgeai"
# distributions whose version decides whether a backend can run, per extra
RUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "openvino", "ai-edge-litert", "tflite-runtime",
                         "tensorrt-cu12-bindings", "tensorrt-cu13-bindings", "cuda-python", "torch", "nvidia-ml-py")


@dataclass(frozen=True)
class Finding:
    level: str  # "ok" | "note" | "problem" (costs some tests) | "error" (the device cannot run)
    text: str


@dataclass
class Examination:
    device: Device
    findings: list[Finding] = field(default_factory=list)

    @property
    def can_run(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def add(self, level: str, text: str) -> None:
        self.findings.append(Finding(level, text))


def declared_requirements() -> list[str]:
    """The package's own requirements, extras' markers included (from its installed metadata)."""
    try:
        return list(metadata.requires(PACKAGE) or [])
    except metadata.PackageNotFoundError:
        return []


def pins(extra: str, declared: list[str] | None = None) -> dict[str, Requirement]:
    """The requirements the extra ``extra`` (or the base, for "") pins, by distribution name."""
    out: dict[str, Requirement] = {}
    for text in declared_requirements() if declared is None else declared:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        in_extra = req.marker is not None and req.marker.evaluate({"extra": extra}) if extra else req.marker is None
        if in_extra and req.name.lower() != PACKAGE:
            out[req.name.lower()] = req
    return out


def extras_for(device: Device) -> tuple[str, ...]:
    """The extras whose pins apply to ``device``'s runtime."""
    if device.backend == "onnxruntime":
        gpu = any(p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
                  for p in device.options.get("providers", []))
        return ("", "ort-gpu", "ort-gpu-cu13") if gpu else ("",)
    if device.backend == "openvino":
        myriad = any(t.upper().startswith("MYRIAD") for t in targets(str(device.options.get("device", "CPU"))))
        return ("ncs2",) if myriad else ("openvino",)
    if device.backend == "litert":
        return ("edgetpu",) if is_edgetpu(device) else ("litert",)
    if device.backend == "tensorrt":
        return ("jetson",) if device.kind == "jetson" else ("tensorrt", "tensorrt-cu13")
    if device.backend == "torch":
        return ("torch",)
    return ()


def check_versions(device: Device, exam: Examination, declared: list[str] | None = None) -> None:
    """Each installed runtime distribution against the pins of the device's extras."""
    extras = extras_for(device)
    wanted: dict[str, list[tuple[str, Requirement]]] = {}
    for extra in extras:
        for name, req in pins(extra, declared).items():
            if name in RUNTIME_DISTRIBUTIONS:
                wanted.setdefault(name, []).append((extra, req))
    for name, options in sorted(wanted.items()):
        version = distribution_version(name)
        if version is None:
            continue  # absent: the probe says what is missing, in the backend's words
        if any(req.specifier.contains(version, prereleases=True) for _, req in options):
            exam.add("ok", f"{name} {version} (supported: {', '.join(str(r.specifier) for _, r in options)})")
        else:
            extra, req = options[0]
            exam.add("error", f"{name} {version} is outside the supported range {req.specifier}: "
                                f"pip install '{name}{req.specifier}'  (or pip install '{PACKAGE}[{extra}]')")


def check_backend(device: Device, exam: Examination) -> None:
    """What the backend needs besides its probe, each a one-line finding."""
    if device.backend == "onnxruntime" and distribution_version("onnxruntime") and \
            distribution_version("onnxruntime-gpu") and "ort-gpu" in extras_for(device):
        exam.add("error", "onnxruntime and onnxruntime-gpu are both installed and the CPU package's files shadow "
                            "the GPU one's: pip uninstall -y onnxruntime && pip install --force-reinstall --no-deps "
                            f"onnxruntime-gpu=={distribution_version('onnxruntime-gpu')}")
    if "ort-gpu" in extras_for(device):
        ort = importlib.import_module("onnxruntime")
        major = ort_gpu.build_cuda_major(ort)
        exam.add("note", f"onnxruntime {ort.__version__} is a CUDA {ort.cuda_version} build: "
                         f"it needs CUDA {major}.x and cuDNN 9" if major
                         else f"onnxruntime {ort.__version__} is not a CUDA build")
    if device.backend == "tensorrt":
        cuda_python = distribution_version("cuda-python")
        cu13 = distribution_version("tensorrt-cu13-bindings")
        cu12 = distribution_version("tensorrt-cu12-bindings")
        if cuda_python and cuda_python.split(".")[0] == "13" and cu12 and not cu13:
            exam.add("error", f"cuda-python {cuda_python} is a CUDA 13 build but TensorRT is the CUDA 12 build "
                                f"(tensorrt-cu12 {cu12}): pip install 'cuda-python>=12.6,<13'")
        if cuda_python and cuda_python.split(".")[0] == "12" and cu13 and not cu12:
            exam.add("error", f"cuda-python {cuda_python} is a CUDA 12 build but TensorRT is the CUDA 13 build "
                                f"(tensorrt-cu13 {cu13}): pip install 'cuda-python>=13,<14'")
        trtexec = find_trtexec()
        exam.add("note", f"trtexec: {trtexec}" if trtexec else "trtexec not found: the harness-vs-trtexec hardware "
                 "test will skip (it ships with TensorRT's tar/deb packages and JetPack)")
    if device.kind == "jetson":
        found = jetson.board()
        if found:
            exam.add("note", "board: " + ", ".join(f"{k} {v}" for k, v in found.items()))
        if hasattr(os, "geteuid") and os.geteuid() != 0:
            exam.add("note", "not root: jetson_clocks --show and nvpmodel may be refused, and the clocks are then "
                             "recorded as unknown: run the nightly as root, or sudo jetson_clocks first")
    if is_edgetpu(device) and device.backend == "litert":
        if shutil.which(COMPILER):
            exam.add("ok", f"{COMPILER}: {shutil.which(COMPILER)}")
        else:
            exam.add("note", f"{COMPILER} is not on PATH: the zoo's ONNX models cannot be compiled here (give "
                             f"*_edgetpu.tflite files): sudo apt-get install edgetpu-compiler (x86-64 only)")


def check_meter(device: Device, exam: Examination) -> None:
    source = device.meter.get("source", "none")
    if source == "none":
        return
    try:
        meter = make_meter(device)
    except MeterUnavailable as exc:
        fix = (": energy_uj is root-only since Linux 5.10: run as root, or sudo chmod a+r "
               "/sys/class/powercap/intel-rapl:*/energy_uj" if source == "rapl" and "ermission" in str(exc) else "")
        exam.add("problem", f"meter {source} cannot be read: {exc}{fix}")
        return
    except EdgeAIError as exc:
        exam.add("problem", f"meter {source}: {exc}")
        return
    try:
        info = getattr(meter, "info", None)
        exam.add("ok", f"meter {source} is readable" + (f" ({info.covers})" if info is not None else ""))
    finally:
        meter.close()


def examine(device: Device, declared: list[str] | None = None) -> Examination:
    exam = Examination(device)
    check_versions(device, exam, declared)
    availability = probe(device)
    if availability.attached:
        exam.add("ok", f"{availability.runtime} {availability.runtime_version or ''}: attached".replace("  ", " "))
    else:
        exam.add("error", availability.reason or "not attached (the backend gave no reason)")
    check_backend(device, exam)
    check_meter(device, exam)
    return exam


def verdict(exams: list[Examination], named: set[str], kinds: set[str]) -> int:
    """1 when a device named on the command line cannot run, or a kind asked for has no device that can."""
    for exam in exams:
        if exam.device.name in named and not exam.can_run:
            return 1
    for kind in kinds:
        if not any(e.can_run for e in exams if e.device.kind == kind):
            return 1
    return 0
