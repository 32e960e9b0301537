"""The inputs a split study feeds, and what sending each one whole costs.

Each graph input that is an image of the model's declared shape gets the centre views of the
real evaluation photographs (models/inputs.py), preprocessed as the model declares; the baselines a
cut must beat are the same uint8 view as a lossless PNG (Pillow, optimize=True: the smallest PNG
Pillow writes) and, beside it, as a JPEG at quality 90, which is what a camera sends. Any other
input (log-mel features, a second non-image input) gets a seeded smooth random field, synthetic and
labelled so (:func:`input_kinds`), with a zlib baseline. A query's bytes are summed over its inputs.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from ..errors import MeasurementError, ModelError
from ..models.inputs import CROPS, Preprocess, evaluation_photos, image_layout, smooth_field

JPEG_QUALITY = 90


PHOTOGRAPHS = "photographs: centre views of the evaluation photographs"
SYNTHETIC = "synthetic: seeded smooth field (not a photograph)"


@dataclass(frozen=True)
class InputSample:
    """One query as the model sees it (a tensor per graph input), and the bytes of sending it whole."""

    feeds: dict[str, np.ndarray]  # graph input -> what it is fed (batch 1)
    raw_bytes: int            # uint8 pixels for an image input, the tensor's own bytes otherwise, summed
    compressed_bytes: int     # lossless: PNG for an image input, zlib otherwise, summed
    compressed_format: str    # "png", "zlib", or "png+zlib" for a mix
    jpeg_bytes: int | None = None  # camera baseline: JPEG of the image inputs (+ zlib of the others); None without one

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.feeds.values())

    @property
    def ndim(self) -> int:
        """The largest rank among the inputs (a spatial input makes the query spatial)."""
        return max(t.ndim for t in self.feeds.values())


def _pillow() -> ModuleType:
    try:
        from PIL import Image
    except ImportError:
        raise MeasurementError("the PNG/JPEG input baselines need Pillow: "
                               "pip install 'pytest-edgeai[photos]'") from None
    module: ModuleType = Image  # typed whether or not Pillow's own types are installed where mypy runs
    return module


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG, Pillow with optimize=True (zlib level 9 and the best filter choice)."""
    buf = io.BytesIO()
    _pillow().fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def jpeg_bytes(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    _pillow().fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def input_kinds(shapes: Mapping[str, tuple[int | str, ...]], preprocess: Preprocess | None) -> dict[str, str]:
    """Per graph input: photographs where it is an image of the preprocess's layout and side, else synthetic."""
    def photo(shape: tuple[int | str, ...]) -> bool:
        if preprocess is None or image_layout(shape) != preprocess.layout:
            return False
        return (shape[2] if preprocess.layout == "NCHW" else shape[1]) == preprocess.size
    return {name: PHOTOGRAPHS if photo(shape) else SYNTHETIC for name, shape in shapes.items()}


def samples_for(shapes: Mapping[str, tuple[int | str, ...]], count: int, preprocess: Preprocess | None,
                seed: int = 0) -> list[InputSample]:
    """Up to ``count`` queries for a model whose graph inputs have ``shapes`` (batch dim set to 1).

    An image input of the ``preprocess``'s shape gets the centre view of each evaluation photograph
    (a second image input the next photograph, so two inputs never carry one view); any other a
    smooth field (seed + query + 1000 x input index) sent as raw float32, zlib for the baseline.
    """
    if not shapes:
        raise ModelError("the model has no graph input to feed")
    dims = {name: [1 if i == 0 else d for i, d in enumerate(shape)] for name, shape in shapes.items()}
    for name, d in dims.items():
        if any(not isinstance(x, int) or x <= 0 for x in d):
            raise ModelError(f"input '{name}' shape {list(shapes[name])} has unknown dimensions besides the batch; "
                             "the split study needs fixed sizes to make inputs")
    kinds = input_kinds(shapes, preprocess)
    pixels = None
    if preprocess is not None and PHOTOGRAPHS in kinds.values():
        pixels = evaluation_photos(preprocess).pixels[::len(CROPS)]
        count = min(count, len(pixels))
    out = []
    for q in range(count):
        feeds, raw, lossless, camera = {}, 0, 0, 0
        for k, name in enumerate(shapes):
            if pixels is not None and preprocess is not None and kinds[name] == PHOTOGRAPHS:
                view = pixels[(q + k) % len(pixels)]
                feeds[name] = preprocess.tensor(view[None])
                raw += view.nbytes
                lossless += len(png_bytes(view))
                camera += len(jpeg_bytes(view))
            else:
                t = smooth_field(seed + q + 1000 * k, tuple(int(x) for x in dims[name]))
                feeds[name] = t
                raw += t.nbytes
                packed = len(zlib.compress(t.tobytes()))
                lossless += packed
                camera += packed
        formats = sorted({"png" if kinds[n] == PHOTOGRAPHS else "zlib" for n in shapes})
        out.append(InputSample(feeds, raw, lossless, "+".join(formats), camera if "png" in formats else None))
    return out
