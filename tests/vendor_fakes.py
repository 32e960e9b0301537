"""Fakes at the vendor boundary that reproduce each vendor's DOCUMENTED behaviour (the document is cited
on each), not the harness's assumptions: a test against them fails where the real runtime would.
"""

from __future__ import annotations

import sys
import textwrap
import threading
import types
from enum import IntEnum
from pathlib import Path


def pci_key(bus_id: str) -> tuple[int, int, int, int]:
    """(domain, bus, device, function) of a PCI bus id in any form NVML accepts.

    NVML API reference, nvmlDeviceGetHandleByPciBusId_v2: "domain:bus:device.function in format
    %x:%x:%x.%x", "domain:bus:device in format %x:%x:%x", "bus:device.function in format %x:%x.%x".
    """
    head, _, function = bus_id.partition(".")
    parts = [int(p, 16) for p in head.split(":")]
    if len(parts) == 2:
        parts = [0, *parts]
    return parts[0], parts[1], parts[2], int(function or "0", 16)


class FakeNVMLError(Exception):
    pass


class FakeNVMLNotSupported(FakeNVMLError):
    pass


def fake_pynvml(gpus: list[dict], reasons: int = 0x1) -> types.ModuleType:
    """nvidia-ml-py as documented (NVML API reference, "Device Queries"):

    - indices follow PCI bus order ("the order in which NVML enumerates devices has no guarantees of
      consistency between reboots"; in practice PCI order, and CUDA's default order is fastest first);
    - nvmlDeviceGetViolationStatus(handle, perfPolicyType) returns nvmlViolationTime_t with
      referenceTime (CPU timestamp, us) and violationTime (ns, cumulative);
    - nvmlDeviceGetCurrentClocksEventReasons is the name since driver 535 (ThrottleReasons before).

    ``gpus``: dicts with ``bus`` ("00000000:3B:00.0"), ``name``, optional ``violation_ns`` (policy -> ns).
    """
    nv = types.ModuleType("pynvml")
    nv.NVMLError, nv.NVMLError_NotSupported = FakeNVMLError, FakeNVMLNotSupported
    nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_TEMPERATURE_GPU = 1, 2, 0
    bits = {"GpuIdle": 0x1, "ApplicationsClocksSetting": 0x2, "SwPowerCap": 0x4, "HwSlowdown": 0x8,
            "SwThermalSlowdown": 0x20, "HwThermalSlowdown": 0x40}
    for name, bit in bits.items():
        setattr(nv, "nvmlClocksEventReason" + name, bit)
    ordered = sorted(gpus, key=lambda g: pci_key(g["bus"]))
    nv.gpus = ordered
    nv.nvmlInit = lambda: None
    nv.nvmlShutdown = lambda: None
    nv.nvmlDeviceGetCount = lambda: len(ordered)
    nv.nvmlDeviceGetHandleByIndex = lambda i: ordered[i]

    def by_bus(bus_id):
        for g in ordered:
            if pci_key(g["bus"]) == pci_key(bus_id):
                return g
        raise FakeNVMLError("Not Found")

    def violation(handle, policy):
        if policy not in handle.get("violation_ns", {}):
            raise FakeNVMLNotSupported("Not Supported")
        return types.SimpleNamespace(referenceTime=0, violationTime=handle["violation_ns"][policy])

    nv.nvmlDeviceGetHandleByPciBusId = by_bus
    nv.nvmlDeviceGetName = lambda h: h["name"].encode()
    nv.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1410, 2: 1215}[kind]
    nv.nvmlDeviceGetMaxClockInfo = lambda h, kind: {1: 1980, 2: 1215}[kind]
    nv.nvmlDeviceGetTemperature = lambda h, kind: 83
    nv.nvmlDeviceGetCurrentClocksEventReasons = lambda h: h.get("reasons", reasons)
    nv.nvmlDeviceGetViolationStatus = violation
    nv.nvmlDeviceGetTotalEnergyConsumption = lambda h: h.get("energy_mj", 1_000_000)
    nv.nvmlDeviceGetPowerUsage = lambda h: 150_000
    return nv


def fake_cuda_runtime_bus_ids(cuda_order_buses: list[str]) -> types.ModuleType:
    """cuda.bindings.runtime's cudaDeviceGetPCIBusId (CUDA Runtime API: returns "[domain]:[bus]:[device].[function]"
    for a CUDA device index; cuda-python returns (cudaError_t, bytes)). CUDA numbers devices fastest first
    by default (CUDA C Programming Guide, CUDA_DEVICE_ORDER), so this list is CUDA's order, not NVML's."""
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaError_t = IntEnum("cudaError_t", {"cudaSuccess": 0, "cudaErrorInvalidDevice": 101}, start=0)

    def bus_id(length, device):
        if device >= len(cuda_order_buses):
            return rt.cudaError_t.cudaErrorInvalidDevice, b""
        return rt.cudaError_t.cudaSuccess, cuda_order_buses[device].encode()[:length - 1]

    rt.cudaDeviceGetPCIBusId = bus_id
    return rt


def install_cuda_runtime(monkeypatch, rt: types.ModuleType) -> None:
    """Make ``import cuda.bindings.runtime`` give ``rt`` (cuda-python 12.6+/13 layout; 13 has no cuda.cudart)."""
    cuda_pkg, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda_pkg.bindings, bindings.runtime = bindings, rt
    for name, mod in {"cuda": cuda_pkg, "cuda.bindings": bindings, "cuda.bindings.runtime": rt,
                      "cuda.cudart": None}.items():
        monkeypatch.setitem(sys.modules, name, mod)


def fake_cuda_streams() -> types.ModuleType:
    """cuda.bindings.runtime's stream calls (CUDA Runtime API, "Stream Management"; cuda-python returns
    (cudaError_t, value) tuples): cudaStreamCreateWithFlags(cudaStreamNonBlocking) gives a stream that does
    not synchronise with the legacy default stream; cudaStreamDestroy of a destroyed stream is
    cudaErrorInvalidResourceHandle. ``rt.live`` is the set of streams not yet destroyed."""
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaError_t = IntEnum("cudaError_t", {"cudaSuccess": 0, "cudaErrorInvalidResourceHandle": 400}, start=0)
    rt.cudaStreamNonBlocking = 1
    rt.live, rt.flags, rt.device = set(), {}, [None]
    handles = iter(range(0x7F0000001000, 0x7F0000100000, 0x1000))  # addresses: never 0, the default stream

    def create(flags):
        stream = next(handles)
        rt.live.add(stream)
        rt.flags[stream] = flags
        return rt.cudaError_t.cudaSuccess, stream

    def destroy(stream):
        if stream not in rt.live:
            return (rt.cudaError_t.cudaErrorInvalidResourceHandle,)
        rt.live.remove(stream)
        return (rt.cudaError_t.cudaSuccess,)

    rt.cudaStreamCreateWithFlags = create
    rt.cudaStreamDestroy = destroy
    rt.cudaSetDevice = lambda device: (rt.device.__setitem__(0, device), (rt.cudaError_t.cudaSuccess,))[1]
    rt.cudaGetErrorName = lambda err: (rt.cudaError_t.cudaSuccess, rt.cudaError_t(err).name.encode())
    return rt


class FakeCudaSessions:
    """onnxruntime-gpu's InferenceSession with the CUDA provider, as documented, computing with the real CPU
    onnxruntime underneath:

    - get_available_providers() lists the providers the build has, whether or not CUDA and cuDNN load; when
      they do not, the session is created without the CUDA provider and onnxruntime only logs "Failed to
      create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 12.*" (microsoft/onnxruntime#21825): here
      ``libraries_load = False``;
    - provider option ``user_compute_stream`` (the stream's address as a string) runs the session on that
      stream and sets ``has_user_compute_stream`` to "1" by itself; "0" is no stream
      (microsoft/onnxruntime#19229 and its python doc, #19245); before 1.17 the Python API ignored it:
      here ``takes_user_stream = False``; get_provider_options() returns every value as a string;
    - Run() may be called from several threads at once ("InferenceSession::Run() is guaranteed to be
      thread-safe", microsoft/onnxruntime#19301) and the Python binding releases the GIL while it runs.

    ``rendezvous = N`` makes the first N runs wait for each other (a barrier with a timeout): a caller that
    never has N runs in flight fails with BrokenBarrierError instead of passing.
    """

    def __init__(self, real_session_class, libraries_load: bool = True, takes_user_stream: bool = True,
                 rendezvous: int = 0):
        self.real = real_session_class
        self.libraries_load, self.takes_user_stream = libraries_load, takes_user_stream
        self.created: list = []
        self.lock = threading.Lock()
        self.active = self.peak = 0
        self.barrier = threading.Barrier(rendezvous, timeout=10) if rendezvous else None
        self.waited = 0

    def session_class(self):
        fake = self

        class InferenceSession:
            def __init__(self, path, sess_options=None, providers=None, provider_options=None):
                self._real = fake.real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])
                providers = list(providers or ["CPUExecutionProvider"])
                options = list(provider_options or [{} for _ in providers])
                kept = [(p, o) for p, o in zip(providers, options)
                        if p == "CPUExecutionProvider" or (p == "CUDAExecutionProvider" and fake.libraries_load)]
                self._providers = [p for p, _ in kept] or ["CPUExecutionProvider"]
                self._options = {}
                for p, o in kept:
                    values = {k: str(v) for k, v in o.items()}
                    if p == "CUDAExecutionProvider":
                        stream = values.pop("user_compute_stream", "0") if fake.takes_user_stream else "0"
                        values.pop("user_compute_stream", None)
                        values.update(user_compute_stream=stream, has_user_compute_stream="0" if stream == "0" else "1")
                    self._options[p] = values
                fake.created.append(self)

            def get_providers(self):
                return list(self._providers)

            def get_provider_options(self):
                return {p: dict(o) for p, o in self._options.items()}

            def get_inputs(self):
                return self._real.get_inputs()

            def get_outputs(self):
                return self._real.get_outputs()

            def run(self, names, feeds):
                with fake.lock:
                    fake.active += 1
                    fake.peak = max(fake.peak, fake.active)
                    wait = fake.barrier is not None and fake.waited < fake.barrier.parties
                    fake.waited += wait
                try:
                    if wait:
                        fake.barrier.wait()
                    return self._real.run(names, feeds)
                finally:
                    with fake.lock:
                        fake.active -= 1

        return InferenceSession


# ---------------------------------------------------------------- edgetpu_compiler

def fake_edgetpu_compiler(bin_dir: Path, version: str = "16.0.384591198", mapped: bool = True) -> Path:
    """An ``edgetpu_compiler`` that behaves as Coral documents it (coral.ai/docs/edgetpu/compiler):

    - ``--version`` prints "Edge TPU Compiler version X";
    - it refuses a model with a dynamic-size tensor ("Model contains dynamic-sized tensors", and Coral's
      model requirements: "Tensor sizes are constant at compile-time");
    - ``-s`` prints the operation log: "Number of operations that will run on Edge TPU: N", "... on CPU: M",
      then the table "Operator  Count  Status" with "Mapped to Edge TPU" or the reason it is not;
    - several inputs are co-compiled: one ``<name>_edgetpu.tflite`` per input, parameter caching shared;
    - it writes ``<name>_edgetpu.log`` beside the outputs.

    A model is read with the TFLite flatbuffer schema (via ai_edge_litert's interpreter, which parses
    it): every op is "mapped" when ``mapped`` is true, none otherwise (an fp32 model never maps).
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "edgetpu_compiler"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys, shutil
        args = sys.argv[1:]
        if args == ["--version"]:
            print("Edge TPU Compiler version {version}")
            sys.exit(0)
        out = "."
        models = []
        it = iter(args)
        for a in it:
            if a in ("-o", "--out_dir"):
                out = next(it)
            elif a.startswith("-"):
                continue
            else:
                models.append(a)
        from ai_edge_litert.interpreter import Interpreter
        print("Edge TPU Compiler version {version}")
        for m in models:
            it = Interpreter(model_path=m)
            dynamic = [d["name"] for d in it.get_input_details() if -1 in list(d["shape_signature"])]
            if dynamic:
                print("ERROR: Attempting to use a delegate that only supports static-sized tensors with a graph "
                      "that has dynamic-sized tensors.", file=sys.stderr)
                print("Compilation failed: Model contains dynamic-sized tensors", file=sys.stderr)
                sys.exit(1)
        for m in models:
            it = Interpreter(model_path=m)
            ops = {{}}
            for op in it._get_ops_details():
                ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
            int8 = all(d["dtype"].__name__ in ("int8", "uint8") for d in it.get_input_details())
            on_tpu = sum(ops.values()) if ({mapped!r} and int8) else 0
            stem = os.path.splitext(os.path.basename(m))[0]
            print(f"Input model: {{m}}")
            print(f"Input size: {{os.path.getsize(m) / 1024:.2f}}KiB")
            print(f"Output model: {{os.path.join(out, stem + '_edgetpu.tflite')}}")
            print("On-chip memory used for caching model parameters: 1.00MiB")
            print("On-chip memory remaining for caching model parameters: 6.91MiB")
            print("Off-chip memory used for streaming uncached model parameters: 0.00B")
            print(f"Number of Edge TPU subgraphs: {{1 if on_tpu else 0}}")
            print(f"Total number of operations: {{sum(ops.values())}}")
            print("Operation log: " + os.path.join(out, stem + "_edgetpu.log"))
            table = [f"Number of operations that will run on Edge TPU: {{on_tpu}}",
                     f"Number of operations that will run on CPU: {{sum(ops.values()) - on_tpu}}", "",
                     "Operator                       Count      Status", ""]
            for name, n in sorted(ops.items()):
                status = "Mapped to Edge TPU" if on_tpu else "Operation is working on an unsupported data type"
                table.append(f"{{name:<30}} {{n:<10}} {{status}}")
            if "-s" in args:
                print("\\n".join(table))
            shutil.copyfile(m, os.path.join(out, stem + "_edgetpu.tflite"))
            with open(os.path.join(out, stem + "_edgetpu.log"), "w") as log:
                log.write(f"Edge TPU Compiler version {version}\\nInput: {{m}}\\nOutput: {{stem}}_edgetpu.tflite\\n\\n")
                log.write("\\n".join(table[3:]) + "\\n")
        """))
    script.chmod(0o755)
    return script
