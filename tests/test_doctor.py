"""pytest-edgeai doctor: versions against the package's pins, the backends' own reasons, meters, and the
exit status a nightly relies on. Bad input (a version outside the range, a shadowed GPU package, a device
that cannot run) is one line each, and the other devices are still examined."""

from __future__ import annotations

import onnxruntime
import pytest
from vendor_fakes import FakeCudaSessions

from pytest_edgeai import cli, doctor
from pytest_edgeai.backends import ort_gpu
from pytest_edgeai.devices import Device, builtin_cpu

DECLARED = ['onnxruntime>=1.17', 'openvino<2027,>=2024.0; extra == "openvino"',
            'openvino<2022.4,>=2022.3; extra == "ncs2"', 'onnxruntime-gpu[cuda,cudnn]<1.27,>=1.21; extra == "ort-gpu"',
            'pytest-edgeai[report]; extra == "suites"']


def test_pins_are_read_per_extra_from_the_declared_requirements():
    assert set(doctor.pins("", DECLARED)) == {"onnxruntime"}
    assert str(doctor.pins("ncs2", DECLARED)["openvino"].specifier) == "<2022.4,>=2022.3"
    assert "pytest-edgeai" not in doctor.pins("suites", DECLARED)


@pytest.mark.parametrize("installed, level", [("2026.4.1", "ok"), ("2023.3.0", "error"), ("2027.0.0", "error")])
def test_a_runtime_outside_the_pinned_range_is_one_line_with_the_fix(monkeypatch, installed, level):
    monkeypatch.setattr(doctor, "distribution_version", lambda name: installed if name == "openvino" else None)
    exam = doctor.Examination(Device(name="ov", kind="cpu", backend="openvino", options={"device": "CPU"}))
    doctor.check_versions(exam.device, exam, DECLARED)
    [finding] = exam.findings
    assert finding.level == level
    if level == "error":
        assert finding.text == (f"openvino {installed} is outside the supported range <2027,>=2024.0: pip install "
                                f"'openvino<2027,>=2024.0'  (or pip install 'pytest-edgeai[openvino]')")


def test_myriad_is_held_to_the_ncs2_pin_not_the_openvino_one(monkeypatch):
    monkeypatch.setattr(doctor, "distribution_version", lambda name: "2026.4.1" if name == "openvino" else None)
    exam = doctor.Examination(Device(name="ncs2", kind="ncs2", backend="openvino", options={"device": "MYRIAD"}))
    doctor.check_versions(exam.device, exam, DECLARED)
    assert exam.findings[0].level == "error" and "pytest-edgeai[ncs2]" in exam.findings[0].text


def test_onnxruntime_shadowing_onnxruntime_gpu_is_an_error_with_the_commands(monkeypatch):
    versions = {"onnxruntime": "1.31.1", "onnxruntime-gpu": "1.31.1"}
    monkeypatch.setattr(doctor, "distribution_version", versions.get)
    gpu = Device(name="g", kind="gpu", backend="onnxruntime", options={"providers": ["CUDAExecutionProvider"]})
    exam = doctor.Examination(gpu)
    doctor.check_backend(gpu, exam)
    assert exam.findings == [doctor.Finding("error", "onnxruntime and onnxruntime-gpu are both installed and the CPU "
                             "package's files shadow the GPU one's: pip uninstall -y onnxruntime && pip install "
                             "--force-reinstall --no-deps onnxruntime-gpu==1.31.1"),
                             doctor.Finding("note", f"onnxruntime {onnxruntime.__version__} is not a CUDA build")]
    assert not exam.can_run


def test_cuda_libraries_that_do_not_load_are_an_error_naming_what_the_build_needs(monkeypatch):
    """onnxruntime-gpu lists CUDAExecutionProvider whether or not CUDA loads (documented fake): the probe's
    session says it did not, and the line says which CUDA major to install, for this build and the other."""
    ort_gpu.preload.cache_clear()
    monkeypatch.setattr(onnxruntime, "cuda_version", "13.0", raising=False)
    monkeypatch.setattr(onnxruntime, "InferenceSession",
                        FakeCudaSessions(onnxruntime.InferenceSession, libraries_load=False).session_class())
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    gpu = Device(name="g", kind="gpu", backend="onnxruntime",
                 options={"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]})
    exam = doctor.examine(gpu, DECLARED)
    assert not exam.can_run
    [error] = [f.text for f in exam.findings if f.level == "error"]
    assert "lists CUDAExecutionProvider but a session does not get it" in error
    assert ("needs CUDA 13.x and cuDNN 9" in error
            and "for CUDA 12: pip install 'onnxruntime-gpu[cuda,cudnn]>=1.21,<1.27'" in error)
    assert doctor.Finding("note", f"onnxruntime {onnxruntime.__version__} is a CUDA 13.0 build: it needs CUDA 13.x "
                                  f"and cuDNN 9") in exam.findings
    ort_gpu.preload.cache_clear()


def test_an_unreadable_meter_is_a_problem_but_the_device_still_runs(monkeypatch):
    device = Device(name="c", kind="cpu", backend="onnxruntime", meter={"source": "rapl", "root": "/nonexistent"})
    exam = doctor.examine(device, DECLARED)
    assert exam.can_run
    assert [f.level for f in exam.findings if f.text.startswith("meter rapl")] == ["problem"]


def test_the_exit_status_follows_named_devices_and_kinds():
    ok, bad = (doctor.Examination(builtin_cpu()),
               doctor.Examination(Device(name="tpu", kind="edgetpu", backend="litert")))
    bad.add("error", "libedgetpu.so.1 not found")
    assert doctor.verdict([ok, bad], {"cpu"}, set()) == 0
    assert doctor.verdict([ok, bad], {"tpu"}, set()) == 1
    assert doctor.verdict([ok, bad], set(), {"edgetpu"}) == 1
    other = doctor.Examination(Device(name="tpu2", kind="edgetpu", backend="litert"))
    assert doctor.verdict([ok, bad, other], set(), {"edgetpu"}) == 0  # one of the kind can run


def test_the_command_examines_every_device_and_exits_1_for_one_that_cannot_run(tmp_path, capsys):
    toml = tmp_path / "devices.toml"
    toml.write_text('[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n\n'
                    '[devices.tpu]\nkind = "edgetpu"\nbackend = "litert"\n'
                    '[devices.tpu.options]\ndelegate = "edgetpu"\nsysfs_root = "/nonexistent"\n')
    assert cli.main(["doctor", "--devices-file", str(toml), "cpu"]) == 0
    assert "cpu (cpu, onnxruntime): can run" in capsys.readouterr().out
    assert cli.main(["doctor", "--devices-file", str(toml)]) == 1
    out = capsys.readouterr().out
    assert "cpu (cpu, onnxruntime): can run" in out and "tpu (edgetpu, litert): CANNOT RUN" in out
    errors = [line for line in out.splitlines() if line.startswith("  error:")]
    assert len(errors) == 1 and ("tflite_runtime" in errors[0] or "libedgetpu" in errors[0])
