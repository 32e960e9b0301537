"""Run a model segment through the backend registry, handing on what it passes through untouched.

A segment is an in-memory ONNX model; it is written to a temporary file and loaded by the
device's backend (``backends.base.get_backend``), the same path every other measurement
takes, so a stage's session gets the device's configured options. Without a device, a stage
is the host's CPU on onnxruntime with the requested thread count.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from ..backends.base import Session, get_backend
from ..devices import Device
from ..errors import BackendError
from ..models.model import Model
from .cuts import GraphCuts, Segment


def stage_device(threads: int | None = None) -> Device:
    """The host's CPU on onnxruntime: what a split stage runs on when no device is named."""
    options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1} if threads else {}
    return Device(name="split-stage", kind="cpu", backend="onnxruntime", options=options,
                  description="a split stage on this host's CPU")


def load_proto(model: onnx.ModelProto, name: str, device: Device) -> Session:
    """``model`` loaded by ``device``'s backend (from a temporary file it is removed from afterwards)."""
    with tempfile.TemporaryDirectory(prefix="edgeai-segment-") as tmp:
        path = Path(tmp) / "segment.onnx"
        onnx.save(model, str(path))
        return get_backend(device.backend).load(Model(name=name, path=path, format="onnx", source="file"),
                                                device)


class SegmentSession:
    """One backend session for one segment; ``run`` maps boundary tensors to boundary tensors."""

    def __init__(self, segment: Segment, threads: int | None = None, device: Device | None = None):
        self.segment = segment
        self._fed = [i.name for i in segment.model.graph.input]
        self._produced = [o.name for o in segment.model.graph.output]
        self._session: Session | None = None
        if self._produced:
            name = f"{segment.model.graph.name}[{segment.start}:{segment.stop}]"
            self._session = load_proto(segment.model, name, device or stage_device(threads))
            self._produced = [o.name for o in self._session.outputs]

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.segment.inputs if n not in feed]
        if missing:
            raise BackendError(f"segment [{self.segment.start}, {self.segment.stop}) needs "
                               f"{', '.join(missing)}, which were not fed")
        out = {n: feed[n] for n in self.segment.passthrough}
        if self._session is not None:
            values = self._session.run({n: feed[n] for n in self._fed})
            out.update(zip(self._produced, values))
        return out

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def activations(graph: GraphCuts, tensors: Sequence[str], feeds: Iterable[Mapping[str, np.ndarray]],
                threads: int | None = None) -> list[dict[str, np.ndarray]]:
    """Run the whole model once per feed, returning the named boundary tensors of each run."""
    inputs = {i.name for i in graph.model.graph.input}
    wanted = [t for t in dict.fromkeys(tensors) if t not in inputs]
    session = load_proto(graph.with_outputs(wanted), graph.model.graph.name or "model", stage_device(threads))
    names = [o.name for o in session.outputs]
    out = []
    try:
        for feed in feeds:
            values = dict(zip(names, session.run(dict(feed))))
            out.append({t: feed[t] if t in inputs else values[t] for t in tensors})
    finally:
        session.close()
    return out
