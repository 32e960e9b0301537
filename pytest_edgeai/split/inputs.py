"""Deterministic, image-like inputs, and what sending one whole costs.

Why not white noise: noise is incompressible, so a PNG of it is as big as the raw pixels and
every cut would look like a bargain. Camera images are smooth with edges and a little sensor
noise; a synthetic scene (gradient sky, shaded shapes, soft texture, sigma-2 noise) drawn from
a seed compresses like one (PNG roughly 1.5-3x), so the baseline a cut must beat is honest.
Non-image inputs (log-mel features) get a smooth random field and a zlib baseline.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import MeasurementError, ModelError

NOISE_SIGMA = 2.0  # grey levels of sensor-like noise on the synthetic scene


def synthetic_scene(seed: int, height: int, width: int) -> np.ndarray:
    """A smooth uint8 HxWx3 scene: gradient, shaded ellipses and boxes, texture, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= max(height - 1, 1)
    x /= max(width - 1, 1)
    top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = top * (1 - y[..., None]) + bottom * y[..., None]
    for _ in range(int(rng.integers(6, 14))):
        cy, cx = rng.uniform(0, 1, 2)
        ry, rx = rng.uniform(0.05, 0.35, 2)
        colour = rng.uniform(0, 255, 3)
        if rng.random() < 0.5:
            inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
        else:
            inside = (np.abs(y - cy) <= ry) & (np.abs(x - cx) <= rx)
        shade = 0.75 + 0.25 * (1 - y)  # light from above
        img = np.where(inside[..., None], colour * shade[..., None], img)
    fy, fx, phase = rng.uniform(2, 9), rng.uniform(2, 9), rng.uniform(0, 2 * np.pi)
    img += 12.0 * np.sin(2 * np.pi * (fy * y + fx * x) + phase)[..., None]
    img += rng.normal(0.0, NOISE_SIGMA, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def smooth_field(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth float32 field (sum of a few low-frequency waves) for non-image inputs."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    out = np.zeros(shape, np.float32)
    for _ in range(4):
        freq = rng.uniform(0.5, 3, len(shape))
        out += np.sin(sum(2 * np.pi * f * g for f, g in zip(freq, grids)) + rng.uniform(0, 6.3))
    return out + rng.normal(0, 0.05, shape).astype(np.float32)


@dataclass(frozen=True)
class InputSample:
    """One input as the model sees it, and the bytes of sending it whole."""

    tensor: np.ndarray        # what the model is fed (batch 1)
    raw_bytes: int            # uint8 pixels for an image, the tensor's own bytes otherwise
    compressed_bytes: int     # PNG for an image, zlib otherwise
    compressed_format: str


def image_sample(image: np.ndarray) -> InputSample:
    """An HxWx3 uint8 image as an NCHW float32 tensor in [-1, 1], with its PNG size."""
    tensor = (image.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
    return InputSample(np.ascontiguousarray(tensor), image.nbytes, len(png_bytes(image)), "png")


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG through Pillow (shipped with matplotlib) at zlib level 6, Pillow's default."""
    try:
        from PIL import Image
    except ImportError:
        raise MeasurementError("the PNG input baseline needs Pillow (it comes with matplotlib): "
                               "pip install pillow") from None
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def samples_for(shape: tuple[int | str, ...], count: int, seed: int = 0) -> list[InputSample]:
    """``count`` deterministic inputs for a model input of ``shape`` (batch dim set to 1).

    An input with 3 channels in NCHW is an image (synthetic scene); anything else is a
    smooth field sent as raw float32 (compressed with zlib for the baseline).
    """
    dims = [1 if i == 0 else d for i, d in enumerate(shape)]
    if any(not isinstance(d, int) or d <= 0 for d in dims):
        raise ModelError(f"input shape {list(shape)} has unknown dimensions besides the batch; "
                         "the split suite needs fixed sizes to make inputs")
    if len(dims) == 4 and dims[1] == 3:
        return [image_sample(synthetic_scene(seed + i, dims[2], dims[3])) for i in range(count)]
    out = []
    for i in range(count):
        t = smooth_field(seed + i, tuple(dims))
        out.append(InputSample(t, t.nbytes, len(zlib.compress(t.tobytes())), "zlib"))
    return out
