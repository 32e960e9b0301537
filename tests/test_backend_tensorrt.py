"""TensorRT 8.6, 10 and 11 with fakes of tensorrt and cuda-python injected via sys.modules.

The fakes follow each version's documented API (TensorRT Python API reference; "Migrating from
TensorRT 10.x to 11.x", removed Python APIs: BuilderFlag.FP16/INT8/BF16/FP8, IBuilderConfig.int8_calibrator,
set_calibration_profile; TensorRT 8.x ONNX parser: explicit batch only; cuda-python's (error, value)
tuples, cudaMallocHost, stream capture). The fake engine really computes: it runs the ONNX model it
was built from with onnxruntime on the bytes found in the fake device buffers, so outputs prove the
pinned host -> device -> host plumbing, not just the calls.
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
    streams = iter(range(1, 1000))
    rt.cudaStreamCreate = lambda: (ok, next(streams))
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


@pytest.fixture(params=["8.6.1", "10.3.0", "11.1.0"])
def fakes(request, monkeypatch):
    rt = make_cudart()
    trt = make_trt(rt, request.param)
    cuda_pkg, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda_pkg.bindings, bindings.runtime = bindings, rt
    for name, mod in {"tensorrt": trt, "cuda": cuda_pkg, "cuda.bindings": bindings, "cuda.bindings.runtime": rt,
                      "cuda.bindings.utils": None}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return trt, rt


def gpu(tmp_path, **options) -> Device:
    return Device(name="trt", kind="gpu", backend="tensorrt", options={"cache_dir": str(tmp_path / "engines"), **options})


def test_probe_reports_the_gpu_and_versions(fakes, tmp_path):
    trt, _ = fakes
    a = trtb.TensorRTBackend().probe(gpu(tmp_path))
    assert a.attached and a.runtime_version == trt.__version__
    assert a.details["gpu"] == "Fake GPU 80GB" and a.details["compute_capability"] == "9.0"
    assert a.details["cuda_driver"] == "12.4"
    missing = trtb.TensorRTBackend().probe(gpu(tmp_path, device_id=2))
    assert not missing.attached and "CUDA sees 1 GPU(s), not device 2" in missing.reason


@pytest.mark.parametrize("version", ["8.2.1", "8.5.2", "12.0.0"])
def test_a_tensorrt_outside_the_supported_range_is_one_line_naming_both(monkeypatch, tmp_path, version):
    rt = make_cudart()
    monkeypatch.setitem(sys.modules, "tensorrt", make_trt(rt, version))
    a = trtb.TensorRTBackend().probe(gpu(tmp_path))
    assert not a.attached
    assert a.reason == (f"TensorRT {version} is not supported (supported: 8.6, 10.x or 11.x): "
                        f"pip install 'tensorrt>=8.6,<12' or a JetPack 6 (TensorRT 8.6/10.3) board")


def test_probe_without_tensorrt_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    a = trtb.TensorRTBackend().probe(gpu(tmp_path))
    assert not a.attached and "pytest-edgeai[tensorrt]" in a.reason


def test_one_static_engine_per_batch_then_cached(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    device = gpu(tmp_path, workspace_mb=256)
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
    for batch in (1, 4, 1):
        session.run({"input": np.zeros((batch, 16), np.float32)})
    assert [b["profiles"] for b in trt.builds] == [[{"input": ((1, 16),) * 3}], [{"input": ((4, 16),) * 3}]]
    assert trt.builds[0]["workspace"] == 256 << 20
    explicit = trt.builds[0]["network_flags"] & 1
    assert explicit == (1 if trt.__version__.startswith("8.") else 0)  # required by 8.x, deprecated after
    session.close()
    again = trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
    again.run({"input": np.zeros((4, 16), np.float32)})
    assert len(trt.builds) == 2  # the cached batch-4 engine was reused
    again.close()


def test_dynamic_shapes_build_one_profile_with_its_optimum_at_batch_min(fakes, tiny_model, tmp_path):
    trt, _ = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, shapes="dynamic"))
    session.run({"input": np.zeros((3, 16), np.float32)})
    session.run({"input": np.zeros((8, 16), np.float32)})
    assert [b["profiles"] for b in trt.builds] == [[{"input": ((1, 16), (1, 16), (8, 16))}]]
    with pytest.raises(BackendError, match="outside the engine's profile"):
        session.run({"input": np.zeros((9, 16), np.float32)})
    assert session.settings()["batch_profile"] == [1, 1, 8]
    session.close()


def test_fp16_follows_each_versions_documented_api(fakes, tiny_model, tmp_path):
    trt, _ = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, fp16=True))
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    out = session.run({"input": x})
    want = ort.InferenceSession(str(tiny_model)).run(None, {"input": x})[0]
    [build] = trt.builds
    if trt.__version__.startswith("11."):  # no BuilderFlag.FP16: the ONNX itself is float16, strongly typed
        assert build["flags"] == [] and build["weights"] == ["float16"]
        assert "converted to float16" in session.settings()["precision"]
        np.testing.assert_allclose(out[0], want, atol=2e-2)
    else:
        assert build["flags"] == ["fp16"] and build["weights"] == ["float32"]
        assert session.settings()["precision"] == "fp16 (BuilderFlag.FP16)"
        np.testing.assert_allclose(out[0], want, rtol=1e-6)
    session.close()


def test_int8_needs_qdq_on_tensorrt_11_and_calibrates_before(fakes, tiny_model, tmp_path):
    trt, _ = fakes
    device = gpu(tmp_path, int8=True)
    if trt.__version__.startswith("11."):
        with pytest.raises(BackendError, match="needs a model with QuantizeLinear/DequantizeLinear nodes"):
            trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
        return
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), device)
    assert "calibrated on 16 seeded standard-normal batches" in session.settings()["precision"]
    session.run({"input": np.zeros((1, 16), np.float32)})
    assert trt.builds[0]["flags"] == ["int8"] and trt.builds[0]["calibrator"]
    session.close()


def test_run_copies_through_pinned_buffers_and_keeps_per_query_statistics(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path))
    assert [s.shape for s in session.inputs] == [(None, 16)]
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    for _ in range(5):
        out = session.run({"input": x})
    np.testing.assert_allclose(out[0], ort.InferenceSession(str(tiny_model)).run(None, {"input": x})[0], rtol=1e-6)
    assert session.outputs[0].name == "probabilities"
    assert rt.calls == ["sync"] * 5 and len(rt.pinned) == 2  # one pinned buffer per input and output
    t = session.timings(3)
    assert t["queries"] == 3 and t["compute_ms"]["p50"] == 5.0 and t["h2d_ms"]["mean"] == 1.0
    assert t["host_ms"]["min"] > 0 and set(t["d2h_ms"]) == {"mean", "min", "max", "p50", "p90", "p99"}
    assert session.settings()["host_buffers"] == "pinned (cudaMallocHost)"
    session.close()
    assert rt.memory == {} and rt.pinned == {}  # every device and pinned buffer freed


def test_streams_keep_several_queries_in_flight(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, streams=3))
    assert session.prefers_async()
    run = session.run_async({"input": np.ones((2, 16), np.float32)}, min_count=10, min_duration_s=0.0)
    assert run.in_flight == 3 and run.count >= 10 and session.timings(run.count)["queries"] == run.count
    assert len(rt.pinned) == 6  # three request slots, each with its own pinned buffers
    session.close()
    assert not trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path)).prefers_async()


def test_cuda_graph_replays_the_captured_enqueue(fakes, tiny_model, tmp_path):
    trt, rt = fakes
    session = trtb.TensorRTBackend().load(model_from_file(tiny_model), gpu(tmp_path, cuda_graph=True))
    x = np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32)
    session.run({"input": x})
    assert rt.graphs == []  # the first query runs plainly; the graph is captured after it
    out = session.run({"input": x})
    assert len(rt.graphs) == 1
    np.testing.assert_allclose(out[0], ort.InferenceSession(str(tiny_model)).run(None, {"input": x})[0], rtol=1e-6)
    session.close()


def test_a_model_the_parser_rejects_is_a_model_error(fakes, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08garbage")
    with pytest.raises(ModelError, match="bad.onnx: not a readable ONNX model"):
        trtb.TensorRTBackend().load(model_from_file(bad), gpu(tmp_path))


def test_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="batch_min 4 <= batch_opt 2 <= batch_max 8"):
        trtb.build_options(gpu(tmp_path, batch_min=4, batch_opt=2))
    with pytest.raises(ConfigError, match="did you mean 'fp16'"):
        trtb.build_options(gpu(tmp_path, fp61=True))
    with pytest.raises(ConfigError, match="'ragged' is not allowed"):
        trtb.build_options(gpu(tmp_path, shapes="ragged"))


def test_a_cuda_error_is_a_backend_error(fakes):
    _, rt = fakes
    rt.cudaMalloc = lambda n: (rt.cudaError_t.cudaErrorMemoryAllocation, 0)
    from pytest_edgeai.backends import cuda

    with pytest.raises(BackendError, match="CUDA cudaMalloc failed: cudaErrorFake"):
        cuda.call(rt, "cudaMalloc", 10)


def test_a_jetson_device_on_another_board_is_not_attached(fakes, tmp_path, monkeypatch):
    from pytest_edgeai.backends import jetson

    monkeypatch.setattr(jetson, "board", lambda: {"board": "NVIDIA Jetson AGX Orin Developer Kit", "l4t": "36.4.3"})
    monkeypatch.setattr(jetson, "state", dict)
    nano = Device(name="orin_nano", kind="jetson", backend="tensorrt", options={"board": "Orin Nano"})
    agx = Device(name="agx", kind="jetson", backend="tensorrt", options={"board": "AGX Orin"})
    a = trtb.TensorRTBackend().probe(nano)
    assert not a.attached and "not the configured 'Orin Nano'" in a.reason
    assert trtb.TensorRTBackend().probe(agx).attached


def test_calibration_batches_fill_device_buffers_then_end():
    """What TensorRT's get_batch returns (< 11): device addresses of the next batch, None when done."""
    rt = make_cudart()
    tensor = types.SimpleNamespace(name="input", shape=(-1, 16))
    feed = trtb.CalibrationBatches(rt, [tensor], batch=2)
    given = [feed.next_pointers() for _ in range(trtb.CALIBRATION_SAMPLES)]
    assert all(p is not None and len(p) == 1 for p in given) and len({p[0] for p in given}) == 1  # one buffer, reused
    data = np.frombuffer(bytes(rt.memory[given[-1][0]]), dtype=np.float32)
    assert data.shape == (32,) and data.std() > 0.5  # standard-normal samples, not zeros
    assert feed.next_pointers() is None
