"""edgeai_model("models/x.onnx"): a relative path means the same file wherever pytest is started."""

from __future__ import annotations

import pytest
from conftest import build_tiny_model

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "--edgeai-no-canary")

USES_A_RELATIVE_PATH = """
def test_relative(edgeai_model):
    model = edgeai_model({ref!r})
    assert str(model.path) == {expected!r}
"""


@pytest.fixture
def started_in_a_subdirectory(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A rootdir (it holds the ini file) with models/tiny.onnx, and pytest started in its tests/ folder."""
    pytester.makeini("[pytest]\n")
    build_tiny_model(pytester.mkdir("models") / "tiny.onnx")
    monkeypatch.chdir(pytester.mkdir("tests"))
    return pytester


def test_a_relative_model_path_is_read_from_the_rootdir_not_the_current_directory(started_in_a_subdirectory):
    lab = started_in_a_subdirectory
    expected = str((lab.path / "models" / "tiny.onnx").resolve())
    (lab.path / "tests" / "test_rel.py").write_text(USES_A_RELATIVE_PATH.format(ref="models/tiny.onnx",
                                                                               expected=expected))
    result = lab.runpytest("test_rel.py", "--device", "cpu", *QUICK)
    result.assert_outcomes(passed=1)


def test_a_model_file_not_found_names_every_place_looked_at(started_in_a_subdirectory):
    lab = started_in_a_subdirectory
    build_tiny_model(lab.path / "tests" / "here.onnx")  # beside the test: not where a relative path is read
    (lab.path / "tests" / "test_rel.py").write_text(USES_A_RELATIVE_PATH.format(ref="here.onnx", expected=None))
    result = lab.runpytest("test_rel.py", "--device", "cpu", *QUICK)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*ModelError: model file here.onnx: not found; looked at {lab.path}/here.onnx "
                                 f"(a relative path is read from pytest's rootdir, {lab.path}); "
                                 f"{lab.path}/tests/here.onnx (the current directory: a file is there; name it "
                                 "from the rootdir, or by its absolute path)"])
    assert "Traceback" not in result.stdout.str()
