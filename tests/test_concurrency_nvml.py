"""NVML memory readings for GPU tenants: run for real where an NVIDIA GPU and its driver are present."""

from __future__ import annotations

import pytest

from pytest_edgeai.concurrency.memory import NvmlProbe, available_bytes, gpu_index, probe_for
from pytest_edgeai.devices import Device

GPU = Device(name="gpu", kind="gpu", backend="onnxruntime",
             options={"providers": ["CUDAExecutionProvider"],
                      "provider_options": {"CUDAExecutionProvider": {"device_id": 0}}})


def _nvml_or_skip():
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVIDIA driver/GPU here: {exc}")
    return pynvml


def test_gpu_tenants_are_measured_with_nvml_on_the_configured_gpu():
    assert isinstance(probe_for(GPU), NvmlProbe) and gpu_index(GPU) == 0
    pinned = Device(name="gpu1", kind="gpu", backend="onnxruntime",
                    options={"provider_options": {"CUDAExecutionProvider": {"device_id": 1}}})
    assert gpu_index(pinned) == 1


def test_nvml_reads_used_and_free_memory_of_a_real_gpu():
    pynvml = _nvml_or_skip()
    info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0))
    probe = NvmlProbe(0)
    assert 0 < probe.used_bytes() <= info.total
    free, source = available_bytes(GPU)
    assert 0 < free <= info.total and "NVML" in source
