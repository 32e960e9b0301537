"""The inputs a split study feeds, and what sending each one whole costs.

Image models get the centre views of the real evaluation photographs (models/inputs.py),
preprocessed as the model declares; the baselines a cut must beat are the same uint8 view as a
lossless PNG (Pillow, optimize=True: the smallest PNG Pillow writes) and, beside it, as a JPEG at
quality 90, which is what a camera sends. Non-image inputs (log-mel features) get a smooth random
field and a zlib baseline.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import MeasurementError, ModelError
from ..models.inputs import CROPS, Preprocess, evaluation_photos, smooth_field

JPEG_QUALITY = 90


@dataclass(frozen=True)
class InputSample:
    """One input as the model sees it, and the bytes of sending it whole."""

    tensor: np.ndarray        # what the model is fed (batch 1)
    raw_bytes: int            # uint8 pixels for an image, the tensor's own bytes otherwise
    compressed_bytes: int     # lossless: PNG for an image, zlib otherwise
    compressed_format: str
    jpeg_bytes: int | None = None  # lossy camera baseline (images only)


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise MeasurementError("the PNG/JPEG input baselines need Pillow: pip install 'pytest-edgeai[photos]'") from None
    return Image


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG, Pillow with optimize=True (zlib level 9 and the best filter choice)."""
    buf = io.BytesIO()
    _pillow().fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def jpeg_bytes(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    _pillow().fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def samples_for(shape: tuple[int | str, ...], count: int, preprocess: Preprocess | None,
                seed: int = 0) -> list[InputSample]:
    """Up to ``count`` inputs for a model input of ``shape`` (batch dim set to 1).

    With a ``preprocess`` (an image model): the centre view of each evaluation photograph;
    otherwise a smooth field sent as raw float32 (compressed with zlib for the baseline).
    """
    dims = [1 if i == 0 else d for i, d in enumerate(shape)]
    if any(not isinstance(d, int) or d <= 0 for d in dims):
        raise ModelError(f"input shape {list(shape)} has unknown dimensions besides the batch; "
                         "the split study needs fixed sizes to make inputs")
    if preprocess is not None:
        views = evaluation_photos(preprocess)
        pixels = views.pixels[::len(CROPS)][:count]
        tensors = preprocess.tensor(pixels)
        return [InputSample(tensors[i:i + 1], p.nbytes, len(png_bytes(p)), "png", len(jpeg_bytes(p)))
                for i, p in enumerate(pixels)]
    out = []
    for i in range(count):
        t = smooth_field(seed + i, tuple(int(d) for d in dims))
        out.append(InputSample(t, t.nbytes, len(zlib.compress(t.tobytes())), "zlib"))
    return out
