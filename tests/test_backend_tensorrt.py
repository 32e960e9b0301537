"""TensorRT with fakes of tensorrt and cuda-python injected via sys.modules.

The fakes follow the vendors' APIs (TensorRT 10 names, cuda-python's (error, value) tuples). The
fake engine really computes: it runs the ONNX model with onnxruntime on the bytes found in the
fake device buffers, so outputs prove the host->device->host plumbing, not just the calls.
"""

from __future__ import annotations

import ctypes
import json
import sys
import types
from enum import IntEnum

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pytest_edgeai.backends import tensorrt as trtb
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError, ConfigError, ModelError
from pytest_edgeai.models.model import model_from_file


def make_cudart(gpus: int = 1):
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaError_t = IntEnum("cudaError_t", {"cudaSuccess": 0, "cudaErrorMemoryAllocation": 2}, start=0)
    rt.cudaMemcpyKind = IntEnum("cudaMemcpyKind", {"cudaMemcpyHostToDevice": 1, "cudaMemcpyDeviceToHost": 2})
    rt.memory, rt.events, rt.clock_ms, rt.calls = {}, {}, [0.0], []
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
    rt.cudaMemcpyAsync = memcpy_async
    rt.cudaMemcpy = lambda dst, src, n, kind: memcpy_async(dst, src, n, kind, None)
    rt.cudaStreamCreate = lambda: (ok, "stream")
    rt.cudaStreamDestroy = lambda s: (ok,)
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


def make_trt(cudart):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    trt.builds = []
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=2: None})
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace()  # TensorRT 10: explicit batch always
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.BuilderFlag = types.SimpleNamespace(FP16="fp16", INT8="int8")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.DataType = types.SimpleNamespace(FLOAT="float32")
    trt.nptype = lambda dt: np.dtype(dt).type
    trt.IInt8EntropyCalibrator2 = object

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, tuple(shape)

    class Network:
        def __init__(self):
            self.inputs, self.outputs, self.onnx = [], [], b""
            self.num_inputs = 0

        def get_input(self, i):
            return self.inputs[i]

    class Parser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        def parse(self, data):
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
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            trt.builds.append({"flags": config.flags, "profiles": [p.shapes for p in config.profiles],
                               "workspace": config.pool["workspace"]})
            meta = {"inputs": [[t.name, list(t.shape)] for t in network.inputs],
                    "outputs": [[t.name, list(t.shape)] for t in network.outputs]}
            return json.dumps(meta).encode() + b"\0" + network.onnx

    class Context:
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses = engine, {}, {}

        def set_input_shape(self, name, shape):
            self.shapes[name] = tuple(shape)
            return 1 <= shape[0] <= 8

        def get_tensor_shape(self, name):
            batch = next(iter(self.shapes.values()))[0]
            return (batch, *self.engine.shape[name][1:])

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr

        def execute_async_v3(self, stream):
            cudart.clock_ms[0] += 5.0
            feeds = {n: np.frombuffer(bytes(cudart.memory[self.addresses[n]][:int(np.prod(s)) * 4]),
                                      np.float32).reshape(s) for n, s in self.shapes.items()}
            outs = ort.InferenceSession(self.engine.onnx).run(None, feeds)
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


@pytest.fixture
def fakes(monkeypatch):
    rt = make_cudart()
    trt = make_trt(rt)
    cuda_pkg, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda_pkg.bindings, bindings.runtime = bindings, rt
    for name, mod in {"tensorrt": trt, "cuda": cuda_pkg, "cuda.bindings": bindings, "cuda.bindings.runtime": rt}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return trt, rt


def gpu(tmp_path, **options) -> Device:
    return Device(name="trt", kind="gpu", backend="tensorrt", options={"cache_dir": str(tmp_path / "engines"), **options})


def test_probe_reports_the_gpu_and_versions(fakes, tmp_path):
    a = trtb.TensorRTBackend().probe(gpu(tmp_path))
    assert a.attached and a.runtime_version == "10.3.0"
    assert a.details["gpu"] == "Fake GPU 80GB" and a.details["compute_capability"] == "9.0"
    assert a.details["cuda_driver"] == "12.4"
    missing = trtb.TensorRTBackend().probe(gpu(tmp_path, device_id=2))
    assert not missing.attached and "CUDA sees 1 GPU(s), not device 2" in missing.reason


def test_probe_without_tensorrt_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    a = trtb.TensorRTBackend().probe(gpu(tmp_path))
    assert not a.attached and "pytest-edgeai[tensorrt]" in a.reason


def test_engine_is_built_with_the_profile_and_flags_then_cached(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    device = gpu(tmp_path, fp16=True, batch_opt=4, workspace_mb=256)
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
    assert trt.builds == [{"flags": ["fp16"], "profiles": [{"input": ((1, 16), (4, 16), (8, 16))}],
                           "workspace": 256 << 20}]
    s = session.settings()
    assert s["fp16"] and s["batch_profile"] == [1, 4, 8] and s["tensorrt_version"] == "10.3.0"
    assert s["gpu"] == "Fake GPU 80GB" and s["engine"].endswith(".engine")
    session.close()
    trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
    assert len(trt.builds) == 1  # second load reused the cached engine
    trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, batch_opt=4, workspace_mb=256))
    assert len(trt.builds) == 2  # without fp16 the engine differs: a new key


def test_run_copies_in_computes_copies_out_and_times_each_part(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path))
    assert [s.shape for s in session.inputs] == [(None, 16)] and session.outputs[0].name == "probabilities"
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    out = session.run({"input": x})
    np.testing.assert_allclose(out[0], ort.InferenceSession(str(tiny_model)).run(None, {"input": x})[0], rtol=1e-6)
    assert rt.calls == ["sync"]  # the run waited for the last event before returning
    t = session.last_timings()
    assert (t["h2d_ms"], t["compute_ms"], t["d2h_ms"]) == (1.0, 5.0, 1.0) and t["host_ms"] > 0
    with pytest.raises(BackendError, match="outside the engine's profile"):
        session.run({"input": np.zeros((9, 16), np.float32)})
    session.close()
    assert rt.memory == {}  # every device buffer freed


def test_a_model_the_parser_rejects_is_a_model_error(fakes, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08garbage")
    with pytest.raises(ModelError, match="TensorRT's ONNX parser rejects it"):
        trtb.TensorRTBackend().load(model_from_file(bad), gpu(tmp_path))


def test_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="batch_min 4 <= batch_opt 2 <= batch_max 8"):
        trtb.build_options(gpu(tmp_path, batch_min=4, batch_opt=2))
    with pytest.raises(ConfigError, match="did you mean 'fp16'"):
        trtb.build_options(gpu(tmp_path, fp61=True))


def test_a_cuda_error_is_a_backend_error(fakes):
    _, rt = fakes
    rt.cudaMalloc = lambda n: (rt.cudaError_t.cudaErrorMemoryAllocation, 0)
    from pytest_edgeai.backends import cuda

    with pytest.raises(BackendError, match="CUDA cudaMalloc failed: cudaErrorFake"):
        cuda.call(rt, "cudaMalloc", 10)
