"""Input sets of real photographs: views, declared preprocessing, the PNG/JPEG baselines, bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pytest_edgeai.errors import ModelError
from pytest_edgeai.models.inputs import (
    ASSUMED,
    CALIBRATION,
    CROPS,
    EVALUATION,
    PHOTOS,
    TORCHVISION,
    calibration_photos,
    crop_views,
    decode_photo,
    evaluation_photos,
    image_layout,
    preprocess_for,
    smooth_field,
)
from pytest_edgeai.split.inputs import jpeg_bytes, png_bytes, samples_for

pytest.importorskip("PIL", reason="the photographs are decoded with Pillow: pip install 'pytest-edgeai[photos]'")
try:
    PHOTOS["chelsea"].path()
    PHOTOS["china"].path()
except ModelError as exc:
    pytest.skip(str(exc), allow_module_level=True)


def test_evaluation_and_calibration_photographs_are_disjoint_sets_of_views():
    assert not set(EVALUATION) & set(CALIBRATION)
    ev, cal = evaluation_photos(TORCHVISION), calibration_photos(TORCHVISION)
    assert len(ev) == len(EVALUATION) * len(CROPS) >= 30 and ev.pixels.shape[1:] == (224, 224, 3)
    assert len(cal) == len(CALIBRATION) * len(CROPS) and not set(ev.view_photo) & set(cal.view_photo)
    assert ev.pixels.dtype == np.uint8 and len({v.tobytes() for v in ev.pixels}) == len(ev)  # every view differs
    assert ev.describe()["photos"]["china"].startswith("scikit-learn load_sample_image")


def test_the_first_view_is_torchvisions_resize_and_centre_crop():
    from PIL import Image

    image = decode_photo(PHOTOS["chelsea"].path())
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = round((h - side) / 2), round((w - side) / 2)  # CenterCrop rounds as Python does
    square = Image.fromarray(image[top:top + side, left:left + side])
    big = np.asarray(square.resize((256, 256), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(crop_views(image, TORCHVISION)[0], big[16:240, 16:240])


def test_preprocessing_is_the_models_declared_normalisation_and_layout():
    pixels = np.full((1, 224, 224, 3), 255, np.uint8)
    x = TORCHVISION.tensor(pixels)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], (1 - np.array(TORCHVISION.mean)) / np.array(TORCHVISION.std), rtol=1e-6)
    nhwc = preprocess_for(None, {}, (1, 96, 96, 3))
    assert nhwc.layout == "NHWC" and nhwc.size == 96 and not nhwc.declared
    assert nhwc.tensor(np.zeros((2, 96, 96, 3), np.uint8)).shape == (2, 96, 96, 3)
    assert float(ASSUMED.tensor(np.zeros((1, 224, 224, 3), np.uint8)).min()) == -1.0
    params = {"preprocess": {"mean": [0, 0, 0], "std": [1, 1, 1], "resize": 256}}
    declared = preprocess_for(None, params, ("N", 3, 224, 224))
    assert declared.declared and declared.resize == 256
    assert TORCHVISION.at(160).resize == round(256 * 160 / 224)
    with pytest.raises(ModelError, match="mean and std need 3 values"):
        preprocess_for(None, {"preprocess": {"mean": [0], "std": [1]}}, ("N", 3, 224, 224))
    with pytest.raises(ModelError, match="not a fixed-size square RGB image"):
        preprocess_for(TORCHVISION, {}, ("N", 1, 32, 40))
    assert image_layout(("N", 3, "H", "W")) is None


def test_an_undecodable_photograph_is_one_clear_line(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(PHOTOS["china"].path().read_bytes()[:200])
    with pytest.raises(ModelError) as info:
        decode_photo(broken)
    assert str(info.value).startswith(f"photograph {broken}: cannot be decoded") and "\n" not in str(info.value)


def test_split_samples_are_photograph_views_with_lossless_and_camera_baselines():
    samples = samples_for({"x": ("N", 3, 224, 224)}, 6, TORCHVISION)
    assert len(samples) == 6 and samples[0].feeds["x"].shape == (1, 3, 224, 224)
    view = evaluation_photos(TORCHVISION).pixels[0]
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(view)))), view)  # lossless
    assert samples[0].compressed_bytes == len(png_bytes(view)) < view.nbytes
    assert samples[0].jpeg_bytes == len(jpeg_bytes(view)) < samples[0].compressed_bytes
    feat = samples_for({"x": ("N", 1, 32, 40)}, 1, None)
    assert feat[0].compressed_format == "zlib" and feat[0].raw_bytes == 32 * 40 * 4 and feat[0].jpeg_bytes is None
    with pytest.raises(ModelError, match="unknown dimensions"):
        samples_for({"x": ("N", 3, "H", "W")}, 1, TORCHVISION)
    np.testing.assert_array_equal(smooth_field(3, (4, 5)), smooth_field(3, (4, 5)))
