"""SSD post-processing as a stage of its own: anchors, box decoding and non-maximum suppression,
and a study that times the model, the post-processing and both together on the same queries.

Why: the zoo's SSD graphs stop at raw box encodings and class scores (ssd_mobilenet.py), while
published SSD figures (Coral's, the vendors') include TFLite_Detection_PostProcess. This is that
op's documented behaviour, in numpy on the host, with the defaults of the TF object-detection
API's export_tflite_ssd_graph: anchors of ssd_anchor_generator (6 layers, scales 0.2-0.95, aspect
ratios 1, 2, 1/2, 3, 1/3, 3 boxes in the lowest layer), faster_rcnn_box_coder with scale factors
(10, 10, 5, 5), "fast" NMS (each anchor's best non-background class, one class-agnostic greedy
pass, IoU 0.6, score > 1e-8), at most 10 detections.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..backends.base import get_backend
from ..devices import Device
from ..errors import MeasurementError
from ..measure.stats import summarize
from .model import Model

ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
MIN_SCALE, MAX_SCALE = 0.2, 0.95
SCALE_FACTORS = (10.0, 10.0, 5.0, 5.0)


@dataclass(frozen=True)
class NmsConfig:
    score_threshold: float = 1e-8
    iou_threshold: float = 0.6
    max_detections: int = 10


def feature_map_sizes(resolution: int = 300, layers: int = 6) -> list[int]:
    size, out = -(-resolution // 16), []
    for _ in range(layers):
        out.append(size)
        size = -(-size // 2)
    return out


def anchors(resolution: int = 300, layers: int = 6) -> np.ndarray:
    """[A, 4] anchors as (y centre, x centre, height, width), normalised, in the heads' (y, x, box) order."""
    scales = [MIN_SCALE + (MAX_SCALE - MIN_SCALE) * i / (layers - 1) for i in range(layers)] + [1.0]
    out = []
    for layer, size in enumerate(feature_map_sizes(resolution, layers)):
        if layer == 0:  # reduce_boxes_in_lowest_layer
            shapes = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            shapes = [(scales[layer], ar) for ar in ASPECT_RATIOS]
            shapes.append((math.sqrt(scales[layer] * scales[layer + 1]), 1.0))
        hw = np.array([(s / math.sqrt(ar), s * math.sqrt(ar)) for s, ar in shapes])
        centres = (np.arange(size) + 0.5) / size
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([cy, cx], -1).reshape(-1, 1, 2).repeat(len(shapes), 1)
        out.append(np.concatenate([grid, np.broadcast_to(hw, grid.shape)], -1).reshape(-1, 4))
    return np.concatenate(out)


def decode(encodings: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """[A, 4] (ty, tx, th, tw) -> [A, 4] boxes (ymin, xmin, ymax, xmax), faster_rcnn_box_coder."""
    ty, tx, th, tw = (encodings / np.asarray(SCALE_FACTORS)).T
    ya, xa, ha, wa = anchor.T
    yc, xc = ty * ha + ya, tx * wa + xa
    h, w = np.exp(th) * ha, np.exp(tw) * wa
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], -1)


def _area(b: np.ndarray) -> np.ndarray:
    area: np.ndarray = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    return area


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    y1, x1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    y2, x2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(y2 - y1, 0, None) * np.clip(x2 - x1, 0, None)
    union = _area(box) + _area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray    # [K, 4] ymin, xmin, ymax, xmax
    classes: np.ndarray  # [K] class index (1.. : 0 is background)
    scores: np.ndarray   # [K]


def postprocess(encodings: np.ndarray, scores: np.ndarray, anchor: np.ndarray,
                config: NmsConfig = NmsConfig()) -> Detections:
    """One image: [A, 4] box encodings and [A, C] class scores (column 0 background) -> detections."""
    if encodings.shape != (len(anchor), 4) or scores.shape[0] != len(anchor):
        raise MeasurementError(f"SSD outputs {list(encodings.shape)} and {list(scores.shape)} do not fit "
                               f"{len(anchor)} anchors")
    best = scores[:, 1:].argmax(axis=1)
    best_score = scores[np.arange(len(best)), best + 1]
    keep = np.flatnonzero(best_score > config.score_threshold)
    order = keep[np.argsort(-best_score[keep], kind="stable")]
    boxes = decode(encodings[order], anchor[order])
    chosen: list[int] = []
    alive = np.ones(len(order), bool)
    for i in range(len(order)):
        if not alive[i]:
            continue
        chosen.append(i)
        if len(chosen) == config.max_detections:
            break
        alive[i + 1:] &= _iou(boxes[i], boxes[i + 1:]) <= config.iou_threshold
    idx = order[chosen]
    return Detections(boxes[chosen], best[idx] + 1, best_score[idx])


@dataclass
class PipelineTiming:
    """Per query: the model, the post-processing of its outputs, and both together (same query)."""

    model_ns: list[int]
    postprocess_ns: list[int]
    total_ns: list[int]
    detections: list[int]


def time_pipeline(model: Model, device: Device, tensors: np.ndarray, queries: int, warmup: int = 1) -> PipelineTiming:
    """Batch-1 queries cycling over ``tensors``: the model, then post-processing, each timed, in one loop
    (so model, post-processing and their sum come from the same queries); a study the bench runs in the worker."""
    session = get_backend(device.backend).load(model, device)
    try:
        names = [o.name for o in session.outputs]
        if "boxes" not in names or "scores" not in names:
            raise MeasurementError(f"{model.name}: an SSD post-processing stage needs outputs 'boxes' and 'scores', "
                                   f"it has {', '.join(names)}")
        ib, isc = names.index("boxes"), names.index("scores")
        feed_name = session.inputs[0].name
        anchor = anchors(int(tensors.shape[-1]))
        out = PipelineTiming([], [], [], [])
        for q in range(warmup + queries):
            x = tensors[q % len(tensors)][None]
            t0 = time.perf_counter_ns()
            result = session.run({feed_name: x})
            t1 = time.perf_counter_ns()
            found = postprocess(np.asarray(result[ib])[0], np.asarray(result[isc])[0], anchor)
            t2 = time.perf_counter_ns()
            if q >= warmup:
                out.model_ns.append(t1 - t0)
                out.postprocess_ns.append(t2 - t1)
                out.total_ns.append(t2 - t0)
                out.detections.append(len(found.scores))
        return out
    finally:
        session.close()


def summaries(timing: PipelineTiming) -> dict[str, dict[str, object]]:
    return {k: summarize(getattr(timing, k)).to_dict() for k in ("model_ns", "postprocess_ns", "total_ns")}
