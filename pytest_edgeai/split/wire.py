"""Bytes on the wire at a cut: each crossing tensor encoded, then losslessly compressed.

Encodings: ``raw`` (the tensor's own dtype), ``fp16``, ``int8`` (per-tensor affine: uint8
codes plus a float32 scale and zero point, 8 bytes). Codecs: ``none``, ``zlib`` (level 6, the
level PNG uses by default, so activations and input baseline get the same compressor),
``zstd`` (zstandard, level 3) and ``lz4`` (lz4.frame). zstd and lz4 are optional: when the
package is missing the codec is reported unavailable, never failed.

The same functions put a tensor on the wire in split execution (link.py): ``pack`` encodes and
compresses, ``unpack`` decompresses with a bound on the output (a hostile frame cannot inflate
past the bytes its dims declare) and decodes back to the tensor's dtype. Only floating tensors
are lossily encoded; an integer or boolean tensor always travels ``raw``.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, MeasurementError

ENCODINGS = ("raw", "fp16", "int8")
CODECS = ("none", "zlib", "zstd", "lz4")
ZLIB_LEVEL = 6
ZSTD_LEVEL = 3


def encode(array: np.ndarray, encoding: str) -> bytes:
    """The tensor's payload in one encoding (the bytes a sender would put in a frame)."""
    if encoding == "raw":
        return np.ascontiguousarray(array).tobytes()
    if encoding == "fp16":
        return np.ascontiguousarray(array, dtype=np.float16).tobytes()
    if encoding == "int8":
        lo, hi = float(array.min(initial=0.0)), float(array.max(initial=0.0))
        scale = (hi - lo) / 255.0 or 1.0
        codes = np.clip(np.rint((array - lo) / scale), 0, 255).astype(np.uint8)
        return np.array([scale, lo], np.float32).tobytes() + codes.tobytes()
    raise ValueError(f"unknown encoding {encoding!r}; known: {', '.join(ENCODINGS)}")


def decode(payload: bytes, encoding: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The tensor ``encode`` produced ``payload`` from (int8 and fp16 come back in ``dtype``)."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if encoding == "raw":
        want = count * dtype.itemsize
        if len(payload) != want:
            raise MeasurementError(f"a raw {dtype} tensor of shape {shape} needs {want} bytes, got {len(payload)}")
        return np.frombuffer(payload, dtype).reshape(shape)
    if encoding == "fp16":
        if len(payload) != 2 * count:
            raise MeasurementError(f"an fp16 tensor of shape {shape} needs {2 * count} bytes, got {len(payload)}")
        return np.frombuffer(payload, np.float16).astype(dtype).reshape(shape)
    if encoding == "int8":
        if len(payload) != 8 + count:
            raise MeasurementError(f"an int8 tensor of shape {shape} needs {8 + count} bytes, got {len(payload)}")
        scale, lo = np.frombuffer(payload[:8], np.float32)
        codes = np.frombuffer(payload[8:], np.uint8)
        out: np.ndarray = (codes.astype(np.float32) * scale + lo).astype(dtype).reshape(shape)
        return out
    raise MeasurementError(f"unknown encoding {encoding!r}; known: {', '.join(ENCODINGS)}")


def encoded_size(encoding: str, dtype: np.dtype, count: int) -> int:
    """Bytes ``encode`` makes of ``count`` elements: what a receiver may accept before decompressing."""
    return {"raw": count * dtype.itemsize, "fp16": 2 * count, "int8": 8 + count}[encoding]


def wire_encoding(array: np.ndarray, encoding: str) -> str:
    """The encoding a tensor really travels in: lossy encodings apply to floating tensors only."""
    return encoding if np.issubdtype(array.dtype, np.floating) else "raw"


def parse_key(key: str) -> tuple[str, str]:
    """'fp16+zstd' -> ('fp16', 'zstd'), checking both halves (the keys CutBytes.sizes uses)."""
    encoding, _, codec = key.partition("+")
    codec = codec or "none"
    if encoding not in ENCODINGS or codec not in CODECS:
        raise ConfigError([(f"wire encoding {key!r} is not <encoding>+<codec> with encoding in "
                            f"{', '.join(ENCODINGS)} and codec in {', '.join(CODECS)}")])
    return encoding, codec


def compress(data: bytes, codec: str) -> bytes:
    if codec == "none":
        return data
    found, missing = compressors()
    if codec not in found:
        raise ConfigError([f"wire codec '{codec}' is unavailable here: {missing.get(codec, 'unknown codec')}"])
    return found[codec](data)


def decompress(data: bytes, codec: str, limit: int) -> bytes:
    """``data`` decompressed, refusing (without producing them) more than ``limit`` bytes."""
    try:
        if codec == "none":
            out = data
        elif codec == "zlib":
            out = zlib.decompressobj().decompress(data, limit + 1)
        elif codec == "zstd":
            import zstandard

            out = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read(limit + 1)
        elif codec == "lz4":
            import lz4.frame

            out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=limit + 1)
        else:
            raise MeasurementError(f"unknown codec {codec!r}; known: {', '.join(CODECS)}")
    except Exception as exc:  # zlib.error, zstandard.ZstdError, lz4's RuntimeError: a corrupt payload
        if isinstance(exc, MeasurementError):
            raise
        raise MeasurementError(f"{codec} payload does not decompress: {exc}") from None
    if len(out) > limit:
        raise MeasurementError(f"{codec} payload inflates past the {limit} bytes its header declares; refused")
    return bytes(out)


def _zstd() -> Callable[[bytes], bytes]:
    import zstandard

    compress: Callable[[bytes], bytes] = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress
    return compress


def _lz4() -> Callable[[bytes], bytes]:
    import lz4.frame

    compress: Callable[[bytes], bytes] = lz4.frame.compress
    return compress


def compressors() -> tuple[dict[str, Callable[[bytes], bytes]], dict[str, str]]:
    """The codecs importable here, and why each missing one is missing."""
    found: dict[str, Callable[[bytes], bytes]] = {
        "none": bytes, "zlib": lambda b: zlib.compress(b, ZLIB_LEVEL)}
    missing: dict[str, str] = {}
    for name, loader, package in (("zstd", _zstd, "zstandard"), ("lz4", _lz4, "lz4")):
        try:
            found[name] = loader()
        except ImportError:
            missing[name] = f"the '{package}' package is not installed"
    return found, missing


@dataclass
class CutBytes:
    """Mean bytes per input at one cut, for every encoding x available codec."""

    cut: str
    tensors: tuple[str, ...]
    sizes: dict[str, float]  # "raw+zlib" -> mean bytes over the inputs

    def best(self, lossless_only: bool = True) -> tuple[str, float]:
        """The smallest encoding+codec (only ``raw+*`` when lossless_only)."""
        pool = {k: v for k, v in self.sizes.items() if not lossless_only or k.startswith("raw+")}
        key = min(pool, key=lambda k: (pool[k], k))
        return key, pool[key]


@dataclass
class WireReport:
    """Bytes at every cut over a deterministic input set, against sending the input whole."""

    cuts: list[CutBytes]
    input_raw_bytes: float
    input_compressed_bytes: float
    input_format: str
    unavailable: dict[str, str] = field(default_factory=dict)

    def saving(self, cut: CutBytes, key: str | None = None) -> float:
        """Compressed input bytes over this cut's bytes (>1 means the cut saves bandwidth)."""
        size = cut.sizes[key] if key else cut.best()[1]
        return self.input_compressed_bytes / size if size else float("inf")


def measure_cut_bytes(names: Sequence[str], crossing: Sequence[Sequence[str]],
                      values: Iterable[Mapping[str, np.ndarray]],
                      input_raw: Sequence[int], input_compressed: Sequence[int],
                      input_format: str) -> WireReport:
    """Mean bytes per input at each cut; a tensor shared by several cuts is encoded once."""
    codecs, missing = compressors()
    per_input: list[dict[str, dict[str, int]]] = []
    for feed in values:
        memo: dict[str, dict[str, int]] = {}
        for tensors in crossing:
            for t in tensors:
                if t not in memo:
                    # what the wire really carries (link.encode_frame): an integer tensor travels raw
                    memo[t] = {f"{e}+{c}": len(fn(payload)) for e in ENCODINGS
                               for payload in (encode(feed[t], wire_encoding(feed[t], e)),)
                               for c, fn in codecs.items()}
        per_input.append(memo)
    if not per_input:
        raise ValueError("measure_cut_bytes needs at least one input")
    keys = [f"{e}+{c}" for e in ENCODINGS for c in codecs]
    cuts = [CutBytes(name, tuple(tensors),
                     {k: float(np.mean([sum(m[t][k] for t in tensors) for m in per_input]))
                      for k in keys})
            for name, tensors in zip(names, crossing)]
    return WireReport(cuts, float(np.mean(input_raw)), float(np.mean(input_compressed)),
                      input_format, missing)
