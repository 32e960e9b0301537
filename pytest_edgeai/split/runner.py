"""Run a model segment with onnxruntime, handing on what it passes through untouched."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..errors import BackendError
from .cuts import GraphCuts, Segment


class SegmentSession:
    """One onnxruntime session for one segment; ``run`` maps boundary tensors to boundary tensors."""

    def __init__(self, segment: Segment, threads: int | None = None):
        import onnxruntime as ort

        self.segment = segment
        self._fed = [i.name for i in segment.model.graph.input]
        self._produced = [o.name for o in segment.model.graph.output]
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self._session = None
        if self._produced:
            try:
                self._session = ort.InferenceSession(segment.model.SerializeToString(), opts,
                                                     providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own unrelated exception types
                raise BackendError(f"onnxruntime refused segment [{segment.start}, {segment.stop}) "
                                   f"of '{segment.model.graph.name}': {exc}") from None

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.segment.inputs if n not in feed]
        if missing:
            raise BackendError(f"segment [{self.segment.start}, {self.segment.stop}) needs "
                               f"{', '.join(missing)}, which were not fed")
        out = {n: feed[n] for n in self.segment.passthrough}
        if self._session is not None:
            values = self._session.run(self._produced, {n: feed[n] for n in self._fed})
            out.update(zip(self._produced, values))
        return out



def activations(graph: GraphCuts, tensors: Sequence[str], feeds: Iterable[Mapping[str, np.ndarray]],
                threads: int | None = None) -> list[dict[str, np.ndarray]]:
    """Run the whole model once per feed, returning the named boundary tensors of each run."""
    import onnxruntime as ort

    inputs = {i.name for i in graph.model.graph.input}
    wanted = [t for t in dict.fromkeys(tensors) if t not in inputs]
    probe = graph.with_outputs(wanted)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(probe.SerializeToString(), opts,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own unrelated exception types
        raise BackendError(f"onnxruntime refused '{graph.model.graph.name}': {exc}") from None
    out = []
    for feed in feeds:
        values = dict(zip(wanted, session.run(wanted, dict(feed))))
        out.append({t: feed[t] if t in inputs else values[t] for t in tensors})
    return out
