"""PyTorch: a user's module or an ONNX model (through onnx2torch), on the CPU or a CUDA GPU.

A ``.pt`` file is tried as TorchScript (``torch.jit.load``) first, then as a whole pickled
``nn.Module`` (``torch.load(weights_only=False)``: unpickling runs code, so load only files you
trust). A state_dict alone is not a model: save the module or script it. TorchScript and pickled
modules carry no input shapes: give them as ``input_shapes = { NAME = [1, 3, 224, 224] }`` in the
model's params. ``run`` synchronises the GPU and copies outputs to the host before it returns.
``streams = N`` (CUDA only) keeps N queries in flight for offline throughput, each on its own CUDA stream
with pinned host buffers, as trtexec's --infStreams does for TensorRT.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import BackendError, ConfigError, ModelError
from ..keys import Key
from ..registry import distribution_version
from .asynchronous import AsyncProgress, AsyncRun, OldestFirstQueue, drive
from .base import Availability, TensorSpec
from .device_options import check_keys, flag, positive_int, require

if TYPE_CHECKING:
    import numpy as np

    from ..devices import Device
    from ..models.model import Model

OPTION_KEYS = (Key("device", "string", None), Key("num_threads", "integer", None, minimum=1),
               Key("fp16", "bool", None), Key("streams", "integer", None, minimum=1))


def _torch() -> Any:
    return require("torch", "install the CPU or CUDA build of PyTorch for your platform, then "
                            "pip install --no-deps onnx2torch")


def torch_device(device: Device) -> str:
    value = device.options.get("device", "cuda" if device.kind in ("gpu", "jetson") else "cpu")
    if not isinstance(value, str) or not (value == "cpu" or value == "cuda" or value.startswith("cuda:")):
        raise ConfigError([f"devices.{device.name}.options.device: {value!r} must be cpu, cuda or cuda:N"])
    return value


class TorchBackend:
    """Loads an nn.Module (TorchScript, pickled, or converted from ONNX) onto a torch device."""

    name = "torch"
    OPTIONS = OPTION_KEYS

    def probe(self, device: Device) -> Availability:
        try:
            check_keys(device, OPTION_KEYS, "torch")
            dev = torch_device(device)
            torch = _torch()
        except (BackendError, ConfigError) as exc:
            return Availability(False, str(exc), runtime=self.name)
        version = torch.__version__
        if dev.startswith("cuda"):
            if torch.version.cuda is None:
                return Availability(False, f"torch {version} is a CPU-only build: install a CUDA build of PyTorch",
                                    runtime=self.name, runtime_version=version)
            index = int(dev.partition(":")[2] or 0)
            if not torch.cuda.is_available() or index >= torch.cuda.device_count():
                return Availability(False, f"torch {version} (CUDA {torch.version.cuda}) sees "
                                           f"{torch.cuda.device_count()} CUDA device(s), not {dev}: check the "
                                           f"driver (nvidia-smi) and CUDA_VISIBLE_DEVICES",
                                    runtime=self.name, runtime_version=version)
            return Availability(True, runtime=self.name, runtime_version=version,
                                details={"gpu": torch.cuda.get_device_name(index), "cuda": torch.version.cuda})
        return Availability(True, runtime=self.name, runtime_version=version)

    def load(self, model: Model, device: Device) -> TorchSession:
        check_keys(device, OPTION_KEYS, "torch")
        torch = _torch()
        dev = torch_device(device)
        threads = positive_int(device, "num_threads")
        if threads:
            torch.set_num_threads(threads)
        streams = positive_int(device, "streams", 1) or 1
        if streams > 1 and not dev.startswith("cuda"):
            raise ConfigError([f"devices.{device.name}.options.streams: {streams} streams need a CUDA device, "
                               f"not {dev}"])
        module, inputs, source = _module(torch, model)
        half = flag(device, "fp16")
        try:
            module = module.to(dev).eval()
            if half:
                module = module.half()
        except (RuntimeError, AssertionError) as exc:
            raise BackendError(f"{model.path}: torch cannot move it to {dev}: {exc}") from None
        return TorchSession(torch, module, dev, inputs, half, source, streams)


def _module(torch: Any, model: Model) -> tuple[Any, list[TensorSpec], str]:
    if model.format == "onnx":
        import onnx

        convert, caveat = onnx2torch_convert()

        proto = onnx.load(str(model.path))
        try:
            module = convert(proto)
        except Exception as exc:  # onnx2torch raises NotImplementedError etc. for unsupported ops
            raise ModelError(f"{model.path}: onnx2torch cannot convert it: {type(exc).__name__}: {exc}") from None
        inits = {i.name for i in proto.graph.initializer}
        specs = [TensorSpec(i.name, tuple(d.dim_value or d.dim_param or None for d in i.type.tensor_type.shape.dim),
                            onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type).name)
                 for i in proto.graph.input if i.name not in inits]
        return module, specs, f"onnx2torch {distribution_version('onnx2torch')}{caveat}"
    if model.format != "torch":
        raise ModelError(f"{model.path}: torch runs .pt modules and .onnx models, not {model.format}")
    shapes = model.params.get("input_shapes")
    if not shapes:
        raise ModelError(f"{model.path}: a TorchScript or pickled module carries no input shapes: give them as "
                         f"params.input_shapes = {{ NAME = [1, 3, 224, 224] }} in the model's entry")
    specs = [TensorSpec(n, (None, *[int(d) for d in s[1:]]), "float32") for n, s in shapes.items()]
    try:
        return torch.jit.load(str(model.path), map_location="cpu"), specs, "torch.jit.load"
    except RuntimeError:
        pass  # not TorchScript: a pickled module, perhaps
    try:
        module = torch.load(str(model.path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"{model.path}: neither TorchScript nor a pickled module: {exc}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{model.path}: holds a {type(module).__name__}, not an nn.Module (a state_dict needs "
                         f"its model class: save the whole module or torch.jit.script it)")
    return module, specs, "torch.load (pickled module)"


@functools.cache
def onnx2torch_convert() -> tuple[Callable[[Any], Any], str]:
    """onnx2torch's ``convert`` and a caveat for the record ('' when none).

    onnx2torch imports torchvision, but needs it only to convert NonMaxSuppression and RoiAlign.
    When torchvision is absent, or built for another torch (PyPI's CUDA torchvision beside a +cpu
    torch) so that it fails to import, onnx2torch is imported with a stand-in whose ops raise a clear error if a model
    needs them, and the stand-in is removed from sys.modules again at once.
    """
    try:
        from onnx2torch import convert
        return convert, ""
    except ImportError as exc:
        if not (exc.name or "").startswith("torchvision"):
            raise BackendError(f"ONNX models need onnx2torch on torch ({exc}): "
                               f"pip install --no-deps onnx2torch (after your platform's torch)") from None
        reason = "torchvision is not installed"
    except RuntimeError as exc:  # torchvision's C++ ops do not match this torch
        reason = (f"torchvision {distribution_version('torchvision')} does not match torch "
                  f"{distribution_version('torch')} ({exc})")
    for name in [n for n in sys.modules if n.split(".")[0] in ("torchvision", "onnx2torch")]:
        del sys.modules[name]

    def unavailable(op: str) -> Callable[..., NoReturn]:
        def fail(*_args: Any, **_kwargs: Any) -> NoReturn:
            raise BackendError(f"torchvision.ops.{op} is unavailable: {reason}: install the torchvision "
                               f"build that matches torch")
        return fail

    stand_in, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    vars(ops)["__getattr__"] = unavailable  # PEP 562: a module-level __getattr__
    vars(stand_in)["ops"] = ops
    sys.modules.update({"torchvision": stand_in, "torchvision.ops": ops})
    try:
        from onnx2torch import convert
    finally:
        del sys.modules["torchvision"], sys.modules["torchvision.ops"]
    return convert, f" (without torchvision: {reason})"


class TorchSession:
    """An nn.Module in eval mode under inference_mode; outputs synchronised and copied to the host."""

    def __init__(self, torch: Any, module: Any, dev: str, inputs: list[TensorSpec], half: bool, source: str,
                 streams: int = 1):
        self._torch, self._module, self._dev, self._half, self._source = torch, module, dev, half, source
        self._streams = streams
        self._cuda = dev.startswith("cuda")
        self.inputs = inputs
        self.outputs: list[TensorSpec] = []

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            args = [torch.from_numpy(feeds[s.name]).to(self._dev, non_blocking=True) for s in self.inputs]
            if self._half:
                args = [a.half() if a.is_floating_point() else a for a in args]
            result = _flatten(self._module(*args))
            if self._cuda:
                torch.cuda.synchronize(self._dev)
            outputs = [t.float().cpu().numpy() if self._half and t.is_floating_point() else t.cpu().numpy()
                       for t in result]
        if not self.outputs:
            self.outputs = [TensorSpec(f"output_{i}", (None, *o.shape[1:]), o.dtype.name)
                            for i, o in enumerate(outputs)]
        return outputs

    def prefers_async(self) -> bool:
        return self._streams > 1

    def run_async(self, feeds: dict[str, np.ndarray], min_count: int, min_duration_s: float,
                  progress: AsyncProgress | None = None) -> AsyncRun:
        slots = [_CudaSlot(self._torch, self._module, self._dev, [feeds[s.name] for s in self.inputs], self._half)
                 for _ in range(self._streams)]
        return drive(OldestFirstQueue(slots), min_count, min_duration_s, progress)

    def settings(self) -> dict[str, Any]:
        torch = self._torch
        out = {"device": self._dev, "source": self._source, "fp16": self._half, "streams": self._streams,
               "num_threads": torch.get_num_threads(), "torch_version": torch.__version__,
               "cuda_version": torch.version.cuda}
        if self._cuda:
            out.update(gpu=torch.cuda.get_device_name(self._dev), cudnn=torch.backends.cudnn.version())
        return out

    def close(self) -> None:
        self._module = None
        if self._cuda:
            self._torch.cuda.empty_cache()


class _CudaSlot:
    """One CUDA stream with pinned host inputs and outputs: copy in, forward, copy out, an event after."""

    def __init__(self, torch: Any, module: Any, dev: str, arrays: list[np.ndarray], half: bool):
        self._torch, self._module, self._half = torch, module, half
        self._stream = torch.cuda.Stream(dev)
        self._event = torch.cuda.Event()
        self._host = [torch.from_numpy(a).pin_memory() for a in arrays]
        self._device = [h.to(dev) for h in self._host]
        self._out_host: list[Any] = []

    def submit(self, feeds: dict[str, np.ndarray] | None) -> None:
        torch = self._torch
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            for d, h in zip(self._device, self._host):
                d.copy_(h, non_blocking=True)
            args = [a.half() if self._half and a.is_floating_point() else a for a in self._device]
            outs = _flatten(self._module(*args))
            if not self._out_host:
                self._out_host = [torch.empty(o.shape, dtype=o.dtype, pin_memory=True) for o in outs]
            for h, o in zip(self._out_host, outs):
                h.copy_(o, non_blocking=True)
            self._event.record(self._stream)

    def complete(self) -> None:
        self._event.synchronize()


def _flatten(result: Any) -> list[Any]:
    if isinstance(result, dict):
        return [t for v in result.values() for t in _flatten(v)]
    if isinstance(result, (list, tuple)):
        return [t for v in result for t in _flatten(v)]
    return [result]
