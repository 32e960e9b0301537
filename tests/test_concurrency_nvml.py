"""NVML memory readings and the capacity probe for GPU tenants: run for real where an NVIDIA GPU,
its driver (and, for the probe, a CUDA build of torch) are present; skipped otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgeai.backends.base import TensorSpec
from pytest_edgeai.concurrency.capacity import (
    MIB,
    CapacityPlan,
    NvmlProbe,
    available_bytes,
    probe_capacity,
    probe_for,
)
from pytest_edgeai.devices import Device
from pytest_edgeai.energy.meters.nvml import cuda_index
from pytest_edgeai.models.model import Model

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
    assert isinstance(probe_for(GPU), NvmlProbe) and cuda_index(GPU) == 0
    pinned = Device(name="gpu1", kind="gpu", backend="onnxruntime",
                    options={"provider_options": {"CUDAExecutionProvider": {"device_id": 1}}})
    assert cuda_index(pinned) == 1 and probe_for(pinned).source == "NVML memory used, CUDA device 1"


def test_nvml_reads_used_and_free_memory_of_a_real_gpu():
    pynvml = _nvml_or_skip()
    info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0))
    probe = NvmlProbe(GPU)
    assert 0 < probe.used_bytes() <= info.total
    free, source = available_bytes(GPU)
    assert 0 < free <= info.total and "NVML" in source


class CudaBlockSession:
    """Holds one block of GPU memory, as a loaded model's weights and workspace would."""

    outputs: list = []

    def __init__(self, block):
        self.inputs = [TensorSpec("x", (1, 4), "float32")]
        self.block = block

    def run(self, feeds):
        import torch

        self.block.add_(1)
        torch.cuda.synchronize()
        return []

    def settings(self):
        return {"bytes": self.block.numel()}

    def close(self):
        self.block = None


class CudaBlockLoader:
    """Each load allocates ``mib`` MiB on the GPU (module level: the spawned probe unpickles it)."""

    def __init__(self, mib: int):
        self.mib = mib

    def __call__(self, model, device):
        import torch

        return CudaBlockSession(torch.zeros(self.mib * MIB, dtype=torch.uint8, device="cuda"))


def test_gpu_capacity_is_counted_by_nvml_and_the_cuda_context_is_the_overhead():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU for torch here")
    _nvml_or_skip()
    plan = CapacityPlan(max_tenants=8, budget_bytes=1500 * MIB, step_timeout_s=120)
    model = Model(name="block", path=Path("block.onnx"), format="onnx", source="file")
    result = probe_capacity(model, GPU, plan, available_bytes(GPU), loader=CudaBlockLoader(256))
    assert "NVML" in result.probe_source and all(s.ok for s in result.steps)
    assert result.footprint_bytes == pytest.approx(256 * MIB, rel=0.1)
    assert result.overhead_bytes > 0  # the CUDA context comes with the first tenant only
    assert result.observed_max == result.predicted_budget_max >= 2
