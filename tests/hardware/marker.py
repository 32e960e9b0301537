"""``@pytest.mark.hardware("<kind>")``: run for real where that hardware is attached, skip elsewhere.

tests/conftest.py imports these hooks and the fixture (a second conftest.py below tests/ would
shadow the module name ``conftest`` that other tests import helpers from).

Each kind maps to a device definition; the test is skipped with the backend's own probe reason
(which library or device is missing) unless the probe says it is attached. The ``hardware_device``
fixture gives the test that Device.
"""

from __future__ import annotations

import pytest

from pytest_edgeai.backends.base import probe
from pytest_edgeai.devices import Device

HARDWARE: dict[str, Device] = {
    "edgetpu": Device(name="edgetpu", kind="edgetpu", backend="litert",
                      options={"delegate": "edgetpu", "device": "usb:0"}),
    "edgetpu_pci": Device(name="edgetpu_pci", kind="edgetpu", backend="litert",
                          options={"delegate": "edgetpu", "device": "pci:0"}),
    "ncs2": Device(name="ncs2", kind="ncs2", backend="openvino", options={"device": "MYRIAD"}),
    "openvino_gpu": Device(name="openvino_gpu", kind="gpu", backend="openvino", options={"device": "GPU"}),
    "npu": Device(name="npu", kind="npu", backend="openvino", options={"device": "NPU"}),
    "tensorrt": Device(name="tensorrt", kind="gpu", backend="tensorrt", options={}),
    "cuda": Device(name="torch_cuda", kind="gpu", backend="torch", options={"device": "cuda"}),
    "ort_cuda": Device(name="ort_cuda", kind="gpu", backend="onnxruntime",
                       options={"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}),
    "jetson": Device(name="jetson", kind="jetson", backend="tensorrt", options={"fp16": True}),
}


def pytest_configure(config):
    config.addinivalue_line("markers", "hardware(kind): needs this hardware attached; skipped with the reason "
                                       f"otherwise (kinds: {', '.join(HARDWARE)})")


def _kind(item) -> str | None:
    mark = item.get_closest_marker("hardware")
    return mark.args[0] if mark and mark.args else None


def pytest_runtest_setup(item):
    kind = _kind(item)
    if kind is None:
        return
    if kind not in HARDWARE:
        pytest.fail(f"@pytest.mark.hardware({kind!r}): unknown kind; known: {', '.join(HARDWARE)}", pytrace=False)
    availability = probe(HARDWARE[kind])
    if not availability.attached:
        pytest.skip(f"{kind} not attached: {availability.reason}")
    if kind == "jetson":
        from pytest_edgeai.backends.jetson import power_mode

        if power_mode()["nvpmodel_mode"] is None:
            pytest.skip("not a Jetson: nvpmodel is not available")


@pytest.fixture
def hardware_device(request) -> Device:
    return HARDWARE[_kind(request.node)]
