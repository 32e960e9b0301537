"""Fakes at the vendor boundary that reproduce each vendor's DOCUMENTED behaviour (the document is cited
on each), not the harness's assumptions: a test against them fails where the real runtime would.
"""

from __future__ import annotations

import ctypes
import json
import sys
import textwrap
import threading
import types
from enum import IntEnum
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


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


# ---------------------------------------------------------------- cuda-python and TensorRT

def make_cudart(gpus: int = 1):
    """cuda.bindings.runtime as the CUDA Runtime API and cuda-python document it: every call returns
    (cudaError_t, value...); cudaMallocHost gives real (pinned) host memory; copies and events follow stream
    order (a fake clock advances 1 ms per copy); stream capture and graph launch replay the captured enqueue;
    cudaStreamCreateWithFlags(cudaStreamNonBlocking) makes a stream that does not synchronise with the legacy
    default stream, and destroying a destroyed stream is cudaErrorInvalidResourceHandle."""
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaError_t = IntEnum("cudaError_t", {"cudaSuccess": 0, "cudaErrorMemoryAllocation": 2,
                                                "cudaErrorInvalidResourceHandle": 400}, start=0)
    rt.cudaMemcpyKind = IntEnum("cudaMemcpyKind", {"cudaMemcpyHostToDevice": 1, "cudaMemcpyDeviceToHost": 2})
    rt.cudaStreamCaptureMode = IntEnum("cudaStreamCaptureMode", {"cudaStreamCaptureModeThreadLocal": 1})
    rt.memory, rt.events, rt.clock_ms, rt.calls, rt.pinned, rt.graphs = {}, {}, [0.0], [], {}, []
    ok = rt.cudaError_t.cudaSuccess

    def malloc(n):
        ptr = 0x1000 * (len(rt.memory) + 1)
        rt.memory[ptr] = bytearray(n)
        return ok, ptr

    def memcpy_async(dst, src, n, kind, stream):
        rt.clock_ms[0] += 1.0
        if kind == rt.cudaMemcpyKind.cudaMemcpyHostToDevice:
            rt.memory[dst][:n] = ctypes.string_at(src, n)
        else:
            ctypes.memmove(dst, bytes(rt.memory[src][:n]), n)
        return (ok,)

    def record(ev, stream):
        rt.events[ev] = rt.clock_ms[0]
        return (ok,)

    props = types.SimpleNamespace(name=b"Fake GPU 80GB", major=9, minor=0, totalGlobalMem=80 << 30)
    counter = iter(range(1, 1000))
    rt.cudaMalloc = malloc
    rt.cudaFree = lambda ptr: (rt.memory.pop(ptr), (ok,))[1]

    def malloc_host(n):
        buf = ctypes.create_string_buffer(n)
        rt.pinned[ctypes.addressof(buf)] = buf
        return ok, ctypes.addressof(buf)

    rt.cudaMallocHost = malloc_host
    rt.cudaFreeHost = lambda ptr: (rt.pinned.pop(ptr), (ok,))[1]
    rt.capturing = {}

    def end_capture(stream):
        return ok, ("graph", rt.capturing.pop(stream))

    def launch(graph_exec, stream):
        rt.graphs.append(graph_exec)
        graph_exec[1][0].execute_async_v3(stream, replay=True)
        return (ok,)

    rt.cudaStreamBeginCapture = lambda stream, mode: (rt.capturing.setdefault(stream, []), (ok,))[1]
    rt.cudaStreamEndCapture = end_capture
    rt.cudaGraphInstantiate = lambda graph, flags: (ok, ("exec", graph[1]))
    rt.cudaGraphDestroy = lambda graph: (ok,)
    rt.cudaGraphExecDestroy = lambda graph_exec: (ok,)
    rt.cudaGraphLaunch = launch
    rt.cudaMemcpyAsync = memcpy_async
    rt.cudaMemcpy = lambda dst, src, n, kind: memcpy_async(dst, src, n, kind, None)
    streams = iter(range(1, 1000))  # never 0: the legacy default stream
    rt.cudaStreamNonBlocking = 1
    rt.live, rt.flags = set(), {}  # streams not yet destroyed, and the flags each was created with

    def stream_create(flags=0):
        stream = next(streams)
        rt.live.add(stream)
        rt.flags[stream] = flags
        return ok, stream

    def stream_destroy(stream):
        if stream not in rt.live:
            return (rt.cudaError_t.cudaErrorInvalidResourceHandle,)
        rt.live.remove(stream)
        return (ok,)

    rt.cudaStreamCreate = stream_create
    rt.cudaStreamCreateWithFlags = stream_create
    rt.cudaStreamDestroy = stream_destroy
    rt.cudaEventCreate = lambda: (ok, next(counter))
    rt.cudaEventDestroy = lambda e: (ok,)
    rt.cudaEventRecord = record
    rt.cudaEventSynchronize = lambda e: (rt.calls.append("sync"), (ok,))[1]
    rt.cudaEventElapsedTime = lambda a, b: (ok, rt.events[b] - rt.events[a])
    rt.cudaGetDeviceCount = lambda: (ok, gpus)
    rt.cudaSetDevice = lambda i: (ok,)
    rt.cudaGetDeviceProperties = lambda i: (ok, props)
    rt.cudaDriverGetVersion = lambda: (ok, 12040)
    rt.cudaRuntimeGetVersion = lambda: (ok, 12020)
    rt.cudaGetErrorName = lambda e: (ok, b"cudaErrorFake")
    return rt


def make_trt(cudart, version: str = "10.3.0"):
    """tensorrt as each major documents it: 8.6 needs the EXPLICIT_BATCH flag; 10 ignores it and has
    STRONGLY_TYPED; 11 has no precision flags, no int8 calibrator, and every network strongly typed."""
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.builds = []
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=2: None})
    creation = {"EXPLICIT_BATCH": 0} if major < 11 else {}
    if major >= 10:
        creation["STRONGLY_TYPED"] = 1
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(**creation)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.BuilderFlag = types.SimpleNamespace(**({"FP16": "fp16", "INT8": "int8"} if major < 11 else {}),
                                            REFIT="refit")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dt: np.dtype(dt).type
    trt.IInt8EntropyCalibrator2 = object

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, tuple(shape)

    class Network:
        def __init__(self, flags):
            self.inputs, self.outputs, self.onnx, self.flags = [], [], b"", flags
            self.num_inputs = 0

        def get_input(self, i):
            return self.inputs[i]

    class Parser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        def parse(self, data):
            if major < 10 and not self.network.flags & 1:
                self.errors = ["ONNX parser only supports networks with an explicit batch dimension"]
                return False
            try:
                proto = onnx.load_from_string(data)
            except Exception as exc:
                self.errors = [f"In node -1: {exc}"]
                return False
            dims = lambda v: [d.dim_value or -1 for d in v.type.tensor_type.shape.dim]  # noqa: E731
            self.network.inputs = [Tensor(i.name, dims(i)) for i in proto.graph.input]
            self.network.outputs = [Tensor(o.name, dims(o)) for o in proto.graph.output]
            self.network.num_inputs = len(self.network.inputs)
            self.network.onnx = data
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

    class Config:
        __slots__ = ("flags", "profiles", "pool") + (("int8_calibrator",) if major < 11 else ())

        def __init__(self):
            self.flags, self.profiles, self.pool = [], [], {}

        def set_memory_pool_limit(self, pool, size):
            self.pool[pool] = size

        def set_flag(self, flag):
            self.flags.append(flag)

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            self.shapes[name] = (lo, opt, hi)

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            proto = onnx.load_from_string(network.onnx)
            weights = {onnx.helper.tensor_dtype_to_np_dtype(i.data_type).name for i in proto.graph.initializer}
            trt.builds.append({"flags": config.flags, "profiles": [p.shapes for p in config.profiles],
                               "workspace": config.pool["workspace"], "network_flags": network.flags,
                               "weights": sorted(weights),
                               "calibrator": getattr(config, "int8_calibrator", None) is not None})
            meta = {"inputs": [[t.name, list(t.shape)] for t in network.inputs],
                    "outputs": [[t.name, list(t.shape)] for t in network.outputs],
                    "profile": {k: [list(x) for x in v] for k, v in config.profiles[0].shapes.items()}}
            return json.dumps(meta).encode() + b"\0" + network.onnx

    class Context:
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses = engine, {}, {}

        def set_input_shape(self, name, shape):
            lo, _, hi = self.engine.meta["profile"].get(name, [self.engine.shape[name]] * 3)
            if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                return False
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            if name in self.shapes:
                return self.shapes[name]
            batch = next(iter(self.shapes.values()))[0]
            return (batch, *self.engine.shape[name][1:])

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr

        def execute_async_v3(self, stream, replay=False):
            if not isinstance(stream, int):
                raise TypeError("execute_async_v3(): incompatible function arguments: stream_handle must be int")
            if stream in cudart.capturing and not replay:
                cudart.capturing[stream].append(self)  # recorded into the graph, not run
                return True
            cudart.clock_ms[0] += 5.0
            feeds = {n: np.frombuffer(bytes(cudart.memory[self.addresses[n]][:int(np.prod(s)) * 4]),
                                      np.float32).reshape(s) for n, s in self.shapes.items()}
            outs = self.engine.computes().run(None, feeds)
            for (name, _), out in zip(self.engine.meta["outputs"], outs):
                cudart.memory[self.addresses[name]][:out.nbytes] = out.tobytes()
            return True

    class Engine:
        def __init__(self, plan):
            head, _, self.onnx = plan.partition(b"\0")
            self.meta = json.loads(head)
            self.names = [n for n, _ in self.meta["inputs"]] + [n for n, _ in self.meta["outputs"]]
            self.shape = dict(self.meta["inputs"] + self.meta["outputs"])
            self.num_io_tensors = len(self.names)
            self.session = None

        def computes(self):
            """The onnxruntime session that computes what the engine would (made once per engine)."""
            if self.session is None:
                self.session = ort.InferenceSession(self.onnx)
            return self.session

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return "in" if name in dict(self.meta["inputs"]) else "out"

        def get_tensor_shape(self, name):
            return self.shape[name]

        def get_tensor_dtype(self, name):
            return "float32"

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, plan):
            return Engine(plan) if b"\0" in plan else None

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, Parser, Runtime
    return trt


def install_tensorrt(monkeypatch, version: str = "10.3.0"):
    """Make ``import tensorrt`` and ``import cuda.bindings.runtime`` give the fakes; (trt, rt)."""
    rt = make_cudart()
    trt = make_trt(rt, version)
    install_cuda_runtime(monkeypatch, rt)
    monkeypatch.setitem(sys.modules, "cuda.bindings.utils", None)  # cuda-python 12.x before the utility module
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt, rt


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


# ---------------------------------------------------------------- trtexec

def fake_trtexec(bin_dir: Path, compute_ms: list[float], fail: bool = False) -> Path:
    """A ``trtexec`` that behaves as TensorRT's developer guide documents it ("trtexec"): --loadEngine,
    --shapes=name:AxBxC, --warmUp (ms), --duration (s); --exportTimes=FILE writes a JSON list with one
    object per query holding startInMs, endInMs, startComputeMs, endComputeMs, startOutMs, endOutMs (ms
    from the start). A missing engine file ends with "&&&& FAILED TensorRT.trtexec" and exit status 1."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "trtexec"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys
        args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
        if {fail!r} or not os.path.exists(args.get("loadEngine", "")):
            print("[E] Error opening engine file")
            print("&&&& FAILED TensorRT.trtexec [TensorRT v100300] # trtexec " + " ".join(sys.argv[1:]))
            sys.exit(1)
        t, queries = 0.0, []
        for c in {compute_ms!r}:
            queries.append({{"startInMs": t, "endInMs": t + 0.01, "startComputeMs": t + 0.01,
                             "endComputeMs": t + 0.01 + c, "startOutMs": t + 0.01 + c, "endOutMs": t + 0.02 + c}})
            t += 0.02 + c
        json.dump(queries, open(args["exportTimes"], "w"))
        print("&&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec " + " ".join(sys.argv[1:]))
        """))
    script.chmod(0o755)
    return script
