"""Input sets: real photographs shipped in scikit-image and scikit-learn, cut into views and
preprocessed the way each model declares; smooth fields for non-image inputs.

Why real photographs: a trained network's activations, its int8 calibration and the PNG a cut
must beat all depend on what the camera sees; random or synthetic pixels make every one of those
figures mean something else. The photographs are files inside the two wheels (scikit-image's
``data`` module, scikit-learn's ``load_sample_image``), decoded here with Pillow, so a file that
cannot be decoded is one clear line, never a silent swap for synthetic pixels.

A view is a square region of a photograph (the whole centre square, then four off-centre and one
centre crop at 80%), resized to the model's ``resize`` side and centre-cropped to its input size:
for the first view that is exactly torchvision's Resize(shorter side) + CenterCrop. The evaluation
photographs and the calibration photographs are disjoint, so int8 ranges are never calibrated on
the images they are judged on.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError


@dataclass(frozen=True)
class Preprocess:
    """How a model wants a photograph: resize, centre crop, scale to [0, 1], normalise, layout."""

    name: str
    size: int                           # side of the square the model takes
    resize: int                         # side the view is resized to before the centre crop
    mean: tuple[float, float, float]    # per RGB channel, on the [0, 1] scale
    std: tuple[float, float, float]
    layout: str = "NCHW"                # or NHWC
    declared: bool = True               # False: assumed for a user's model that declares none

    def at(self, size: int, layout: str | None = None) -> Preprocess:
        """The same recipe for a model input of another side (the resize scales with it)."""
        if size == self.size and (layout or self.layout) == self.layout:
            return self
        return replace(self, size=size, resize=max(size, round(self.resize * size / self.size)),
                       layout=layout or self.layout)

    def tensor(self, pixels: np.ndarray) -> np.ndarray:
        """[N, size, size, 3] uint8 views -> float32 in the model's layout."""
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        x = (pixels.astype(np.float32) / np.float32(255.0) - mean) / std
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "resize": self.resize, "crop": self.size, "mean": list(self.mean),
                "std": list(self.std), "layout": self.layout, "scale": "x / 255",
                "declared": self.declared}


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
TORCHVISION = Preprocess("torchvision ImageNet (resize 256, crop 224, mean/std)", 224, 256, IMAGENET_MEAN, IMAGENET_STD)
INCEPTION = Preprocess("Inception (resize 342, crop 299, [-1, 1])", 299, 342, HALF, HALF)
TF_OD_API = Preprocess("TF object detection (resize 300x300, [-1, 1])", 300, 300, HALF, HALF)
ASSUMED = Preprocess("assumed: resize to the input, [-1, 1] (declare params.preprocess for this model)",
                     224, 224, HALF, HALF, declared=False)


def preprocess_from(params: dict[str, Any], size: int, layout: str) -> Preprocess:
    """A user's model: its [models] ``params.preprocess`` table (mean, std, resize), else ASSUMED."""
    table = params.get("preprocess")
    if not table:
        return ASSUMED.at(size, layout)
    try:
        mean, std = tuple(float(v) for v in table["mean"]), tuple(float(v) for v in table["std"])
        resize = int(table.get("resize", size))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"params.preprocess {table!r}: needs mean = [r, g, b], std = [r, g, b] and "
                         f"optionally resize = N ({type(exc).__name__}: {exc})") from None
    if len(mean) != 3 or len(std) != 3 or not all(s > 0 for s in std) or resize < size:
        raise ModelError(f"params.preprocess {table!r}: mean and std need 3 values (std > 0), resize >= {size}")
    return Preprocess("declared in [models] params.preprocess", size, resize, mean, std, layout)


def preprocess_for(declared: Preprocess | None, params: dict[str, Any],
                   shape: tuple[int | str | None, ...]) -> Preprocess:
    """The preprocessing for a model input of ``shape``: the builder's, else the [models] params' or ASSUMED."""
    layout = image_layout(shape)
    if layout is None:
        raise ModelError(f"input shape {list(shape)} is not a fixed-size square RGB image (NCHW or NHWC)")
    side = shape[2] if layout == "NCHW" else shape[1]
    size = side if isinstance(side, int) else 0  # image_layout checked it is an int
    return declared.at(size, layout) if declared else preprocess_from(params, size, layout)


def image_layout(shape: tuple[int | str | None, ...]) -> str | None:
    """NCHW or NHWC when a 4-d input has 3 channels and a fixed square size there, else None."""
    if len(shape) != 4:
        return None
    if shape[1] == 3 and isinstance(shape[2], int) and shape[2] == shape[3]:
        return "NCHW"
    if shape[3] == 3 and isinstance(shape[1], int) and shape[1] == shape[2]:
        return "NHWC"
    return None


@dataclass(frozen=True)
class Photo:
    name: str
    package: str    # import name of the wheel that ships it
    relpath: str    # inside the package
    credit: str

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"photograph {self.name} comes with {self.credit.split(' ')[0]}, which is not "
                             f"installed: pip install 'pytest-edgeai[photos]'")
        return Path(next(iter(spec.submodule_search_locations))) / self.relpath


def _skimage(name: str, file: str) -> Photo:
    return Photo(name, "skimage", f"data/{file}", f"scikit-image skimage.data.{name}()")


def _sklearn(file: str) -> Photo:
    return Photo(file.split(".")[0], "sklearn", f"datasets/images/{file}",
                 f"scikit-learn load_sample_image('{file}')")


PHOTOS = {p.name: p for p in (
    _skimage("chelsea", "chelsea.png"), _skimage("coffee", "coffee.png"), _skimage("astronaut", "astronaut.png"),
    _skimage("rocket", "rocket.jpg"), _sklearn("china.jpg"), _sklearn("flower.jpg"),
    _skimage("motorcycle_left", "motorcycle_left.png"), _skimage("motorcycle_right", "motorcycle_right.png"),
    _skimage("camera", "camera.png"), _skimage("coins", "coins.png"), _skimage("immunohistochemistry", "ihc.png"),
    _skimage("hubble_deep_field", "hubble_deep_field.jpg"), _skimage("retina", "retina.jpg"),
    _skimage("grass", "grass.png"), _skimage("gravel", "gravel.png"),
)}
EVALUATION = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower")
CALIBRATION = ("motorcycle_left", "motorcycle_right", "camera", "coins", "immunohistochemistry",
               "hubble_deep_field", "retina", "grass", "gravel")
# ImageNet-1k classes a correct top-1 may name, for the photographs whose subject is one
IMAGENET_LABELS = {
    "chelsea": (281, 282, 285),          # tabby, tiger cat, Egyptian cat
    "coffee": (504, 967, 968),           # coffee mug, espresso, cup
    "china": (698,),                     # palace (the Summer Palace photograph)
}
# (scale of the shorter side, centre y, centre x) of each view's square
CROPS = ((1.0, 0.5, 0.5), (0.8, 0.5, 0.5), (0.8, 0.3, 0.3), (0.8, 0.3, 0.7), (0.8, 0.7, 0.3), (0.8, 0.7, 0.7))


def decode_photo(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB (greyscale repeated); ModelError when it cannot be decoded."""
    try:
        from PIL import Image
    except ImportError:
        raise ModelError("decoding photographs needs Pillow: pip install 'pytest-edgeai[photos]'") from None
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ModelError(f"photograph {path}: cannot be decoded ({type(exc).__name__}: {exc})") from None


def crop_views(image: np.ndarray, preprocess: Preprocess,
               crops: tuple[tuple[float, float, float], ...] = CROPS) -> np.ndarray:
    """[len(crops), size, size, 3] uint8: each square region resized (bilinear) then centre-cropped."""
    from PIL import Image

    h, w = image.shape[:2]
    out = []
    for scale, cy, cx in crops:
        side = max(1, round(scale * min(h, w)))
        top = int(np.clip(round(cy * h - side / 2), 0, h - side))
        left = int(np.clip(round(cx * w - side / 2), 0, w - side))
        region = Image.fromarray(image[top:top + side, left:left + side])
        big = np.asarray(region.resize((preprocess.resize, preprocess.resize), Image.Resampling.BILINEAR))
        off = (preprocess.resize - preprocess.size) // 2
        out.append(big[off:off + preprocess.size, off:off + preprocess.size])
    return np.stack(out)


@dataclass(frozen=True)
class InputSet:
    """Views of photographs at a model's resolution, and how the model wants them fed."""

    name: str
    photos: tuple[str, ...]
    pixels: np.ndarray = field(repr=False)    # [N, size, size, 3] uint8: what a camera would send
    view_photo: tuple[str, ...]               # the photograph each view comes from
    preprocess: Preprocess

    def __len__(self) -> int:
        return len(self.view_photo)

    def tensors(self) -> np.ndarray:
        return self.preprocess.tensor(self.pixels)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "views": len(self), "photos": {p: PHOTOS[p].credit for p in self.photos},
                "crops": [list(c) for c in CROPS], "preprocess": self.preprocess.describe()}


@lru_cache(maxsize=16)
def photo_set(name: str, photos: tuple[str, ...], preprocess: Preprocess) -> InputSet:
    """Every view of ``photos`` (decoded once per process and preprocess)."""
    views, owners = [], []
    for photo in photos:
        cut = crop_views(decode_photo(PHOTOS[photo].path()), preprocess)
        views.append(cut)
        owners.extend([photo] * len(cut))
    return InputSet(name, photos, np.concatenate(views), tuple(owners), preprocess)


def evaluation_photos(preprocess: Preprocess) -> InputSet:
    return photo_set("photos-eval", EVALUATION, preprocess)


def calibration_photos(preprocess: Preprocess) -> InputSet:
    return photo_set("photos-calib", CALIBRATION, preprocess)


def smooth_field(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth float32 field (sum of a few low-frequency waves) for non-image inputs."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    out = np.zeros(shape, np.float32)
    for _ in range(4):
        freq = rng.uniform(0.5, 3, len(shape))
        out += np.sin(sum(2 * np.pi * f * g for f, g in zip(freq, grids)) + rng.uniform(0, 6.3))
    return out + rng.normal(0, 0.05, shape).astype(np.float32)
