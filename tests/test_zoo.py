"""Tests of the reference model zoo: structure, parameter counts against published
figures, shapes, numerics, determinism, metadata and the concurrent-safe cache."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pytest_edgeai.models import (
    ZOO,
    Builder,
    UnknownModelError,
    build,
    cache_key,
    cached_path,
    default_cache_dir,
    parameter_count,
)

# name -> (reference parameter count, relative tolerance, source). Counts include
# conv/FC weights+biases and BN gamma/beta, exclude BN running statistics.
REFERENCE = {
    # torchvision.models.mobilenet_v2(): sum(p.numel() for p in parameters())
    "mobilenet_v2": (3_504_872, 0.0, "torchvision mobilenet_v2"),
    "mobilenet_v2_imagenet": (3_504_872, 0.0, "torchvision mobilenet_v2 (its trained checkpoint)"),
    # timm inception_v4 / Cadene pretrainedmodels inceptionv4
    "inception_v4": (42_679_816, 0.0, "timm inception_v4"),
    # OpenVINO Open Model Zoo card ssd_mobilenet_v1_coco: 6.807 MParams
    # (MobileNet V1 paper, Table 13: SSD300 MobileNet 6.8M)
    "ssd_mobilenet_v1": (6_807_000, 0.01, "OMZ ssd_mobilenet_v1_coco"),
    # OpenVINO Open Model Zoo card ssd_mobilenet_v2_coco: 16.818 MParams
    "ssd_mobilenet_v2": (16_818_000, 0.01, "OMZ ssd_mobilenet_v2_coco"),
    # Sainath & Parada 2015, Table 1, cnn-trad-fpool3: 244.2K (weights only)
    "cnn_trad_fpool3": (244_200, 0.01, "Sainath & Parada 2015 Table 1"),
}

EXPECTED_IO = {
    "mobilenet_v2": ([3, 224, 224], {"logits": [1000]}),
    "mobilenet_v2_imagenet": ([3, 224, 224], {"logits": [1000]}),
    "inception_v4": ([3, 299, 299], {"logits": [1000]}),
    "ssd_mobilenet_v1": ([3, 300, 300], {"boxes": [1917, 4], "scores": [1917, 91]}),
    "ssd_mobilenet_v2": ([3, 300, 300], {"boxes": [1917, 4], "scores": [1917, 91]}),
    "cnn_trad_fpool3": ([1, 32, 40], {"probabilities": [4]}),
}

SMALL_MODELS = ["mobilenet_v2", "ssd_mobilenet_v1", "cnn_trad_fpool3"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo-cache")


@pytest.fixture(scope="module", params=sorted(ZOO))
def zoo_model(request: pytest.FixtureRequest, cache_dir: Path) -> tuple[str, Path, onnx.ModelProto]:
    """Each model built once per session (through the cache) and loaded once."""
    reason = ZOO[request.param].unavailable({})
    if reason:
        pytest.skip(reason)
    path = cached_path(request.param, cache_dir)
    return request.param, path, onnx.load(str(path))


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_zoo_has_exactly_the_reference_workloads() -> None:
    assert set(ZOO) == set(REFERENCE)
    for name, builder in ZOO.items():
        assert isinstance(builder, Builder) and builder.name == name
        assert builder.version >= 1 and callable(builder.build) and builder.description
        assert builder.task in {"classification", "detection", "keyword_spotting"}
        assert builder.input_kind in {"image", "audio_features"}
    assert ZOO["cnn_trad_fpool3"].input_kind == "audio_features"
    assert ZOO["ssd_mobilenet_v1"].task == "detection"


def test_parameter_count_matches_published(zoo_model) -> None:
    name, _, model = zoo_model
    reference, tolerance, source = REFERENCE[name]
    count = parameter_count(model)
    assert abs(count - reference) <= tolerance * reference, (
        f"{name}: {count:,} parameters vs {reference:,} ({source}, tol {tolerance:.0%})")


def test_model_is_valid_and_shape_inference_gives_the_io_shapes(zoo_model) -> None:
    name, path, model = zoo_model
    onnx.checker.check_model(str(path))
    in_shape, out_shapes = EXPECTED_IO[name]
    assert [i.name for i in model.graph.input] == ["input"]
    assert _dims(model.graph.input[0]) == ["N", *in_shape]
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    for out in stripped.graph.output:  # make inference derive them, not echo ours
        out.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(stripped, strict_mode=True)
    got = {o.name: _dims(o) for o in inferred.graph.output}
    assert got == {k: ["N", *v] for k, v in out_shapes.items()}
    assert {o.name: _dims(o) for o in model.graph.output} == got


def test_onnxruntime_outputs_have_the_shapes_and_are_finite(zoo_model) -> None:
    name, path, _ = zoo_model
    in_shape, out_shapes = EXPECTED_IO[name]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    batches = [1] if name == "inception_v4" else [1, 2]
    rng = np.random.default_rng(0)
    for batch in batches:
        x = rng.standard_normal([batch, *in_shape]).astype(np.float32)
        outputs = dict(zip(names, session.run(None, {"input": x})))
        for out_name, shape in out_shapes.items():
            assert outputs[out_name].shape == (batch, *shape)
            assert outputs[out_name].dtype == np.float32
            assert np.isfinite(outputs[out_name]).all(), f"{name}.{out_name} not finite"
    if name == "cnn_trad_fpool3":
        np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, rtol=1e-5)


def test_weights_are_float32_and_metadata_names_the_builder(zoo_model) -> None:
    name, _, model = zoo_model
    assert model.producer_name == "pytest-edgeai"
    assert model.opset_import[0].version == 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["builder"] == name
    assert meta["builder_version"] == str(ZOO[name].version)
    assert '"seed": 0' in meta["params"]
    assert json.loads(meta["weights"])["kind"] == ("trained" if name == "mobilenet_v2_imagenet" else "seeded")
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in model.graph.initializer
               if i.data_type in float_types)


def test_parameter_count_excludes_batchnorm_statistics() -> None:
    model = build("mobilenet_v2")
    bn_stats = sum(int(np.prod(i.dims)) for i in model.graph.initializer
                   if "running_" in i.name)
    all_floats = sum(int(np.prod(i.dims)) for i in model.graph.initializer
                     if i.data_type == onnx.TensorProto.FLOAT)
    assert bn_stats > 0
    assert parameter_count(model) == all_floats - bn_stats - 2  # 2: the Clip bounds


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_building_is_deterministic_per_seed(name: str) -> None:
    first = build(name).SerializeToString()
    assert build(name).SerializeToString() == first
    assert build(name, seed=1).SerializeToString() != first


def test_builder_params_change_the_graph() -> None:
    narrow = build("mobilenet_v2", width_multiplier=0.5, num_classes=10)
    assert parameter_count(narrow) < parameter_count(build("mobilenet_v2")) / 2
    assert _dims(narrow.graph.output[0]) == ["N", 10]
    kws = build("cnn_trad_fpool3", frames=98, num_classes=12)  # speech_commands shape
    session = ort.InferenceSession(kws.SerializeToString(), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {"input": np.zeros([3, 1, 98, 40], np.float32)})
    assert probs.shape == (3, 12)


def test_cached_path_reuses_the_file_and_keys_on_params(tmp_path: Path) -> None:
    path = cached_path("cnn_trad_fpool3", tmp_path)
    assert path.parent == tmp_path and path.name.startswith("cnn_trad_fpool3-")
    stamp = path.stat().st_mtime_ns
    assert cached_path("cnn_trad_fpool3", tmp_path, seed=0) == path  # defaults are filled
    assert path.stat().st_mtime_ns == stamp
    other = cached_path("cnn_trad_fpool3", tmp_path, seed=1)
    assert other != path and other.read_bytes() != path.read_bytes()
    assert path.read_bytes() == build("cnn_trad_fpool3").SerializeToString()
    assert cache_key("cnn_trad_fpool3") != cache_key("mobilenet_v2")
    assert not list(tmp_path.glob("*.tmp"))


def test_two_processes_building_at_once_end_with_one_identical_file(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        paths = pool.starmap(cached_path, [("ssd_mobilenet_v1", tmp_path)] * 2)
    assert paths[0] == paths[1]
    onnx.checker.check_model(str(paths[0]))
    assert paths[0].read_bytes() == build("ssd_mobilenet_v1").SerializeToString()
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".lock", ".onnx"]


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownModelError, match="Did you mean 'mobilenet_v2'"):
        build("mobilenetv2")
    with pytest.raises(ValueError, match="Known models: cnn_trad_fpool3"):
        cached_path("resnet50", Path("/nonexistent"))


def test_unknown_parameter_is_rejected() -> None:
    with pytest.raises(TypeError, match="inception_v4"):
        build("inception_v4", width_multiplier=2.0)


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEAI_CACHE_DIR", str(tmp_path / "a"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("EDGEAI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "pytest-edgeai" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert default_cache_dir() == tmp_path / "h" / ".cache" / "pytest-edgeai" / "models"
