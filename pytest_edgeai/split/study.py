"""A model's split study, end to end: bytes at each cut, then a plan executed for real.

The split suite calls these two functions and records what they return; they hold the
choices the suite makes (single-tensor cuts as Scission's split points, the input set, which
encoding a claim judges, which cuts count as inside the feature layers) so the suite itself
stays a list of checks. Depth is in network layers (cuts.py); a cut is inside the feature layers
when at least one layer follows it and, for a model whose input is spatial, its tensor still is
(not the pooled embedding, not the logits: the output itself is never a split).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..errors import ConfigError, ModelError, did_you_mean
from ..models.inputs import Preprocess, evaluation_photos, image_layout, preprocess_for
from .constraints import Constraint, KeepInputOnDevice, Pin
from .cuts import Cut, GraphCuts, layer_boundaries
from .execute import SplitExecutor, SplitMeasurement, pipeline_window, stages_for
from .inputs import PHOTOGRAPHS, InputSample, input_kinds, samples_for
from .network import LinkProfile
from .planner import Plan, SplitProblem, plan
from .profile import block_latencies
from .runner import SegmentSession, activations
from .wire import CutBytes, WireReport, decode, encode, measure_cut_bytes, wire_encoding

LOSSLESS = "lossless"
CALIBRATION = 5  # inferences that measure a plan's message costs before its measured runs


@dataclass
class CutStudy:
    """Bytes at every single-tensor cut of a model over a deterministic input set."""

    graph: GraphCuts
    cuts: list[Cut]
    samples: list[InputSample]
    wire: WireReport
    shapes: list[tuple[int, ...]]  # per-sample shape of each cut's tensor
    input_set: dict[str, Any]
    preprocess: Preprocess | None = None  # how photographs were fed (None: not an image model)

    def depth(self, cut: Cut) -> int:
        """Network layers (weighted ops) between the cut and the output."""
        return self.graph.layer_depth(cut.tensors)

    @property
    def layers(self) -> int:
        return self.graph.layer_depth(self.graph.boundary(0))

    def feature(self, k: int) -> bool:
        """Whether the k-th cut lies inside the feature layers (see the module doc)."""
        spatial = self.samples[0].ndim - 1 >= 3
        extent = self.shapes[k][1:] if len(self.shapes[k]) >= 2 else ()
        return self.depth(self.cuts[k]) >= 1 and (not spatial or int(np.prod(extent)) > 1)

    @property
    def jpeg_bytes(self) -> float | None:
        sizes = [s.jpeg_bytes for s in self.samples if s.jpeg_bytes is not None]
        return float(np.mean(sizes)) if sizes else None

    def size(self, row: CutBytes, encoding: str) -> float:
        if encoding == LOSSLESS:
            return row.best()[1]
        if encoding not in row.sizes:
            known = ", ".join([LOSSLESS, *row.sizes])
            why = "; ".join(f"{k}: {v}" for k, v in self.wire.unavailable.items())
            raise ConfigError([f"split claim encoding '{encoding}' is not measured here (known: {known})"
                               + (f"; unavailable codecs: {why}" if why else "")])
        return row.sizes[encoding]

    def savings(self, encoding: str = LOSSLESS, baseline: str = "png") -> list[float]:
        """Input bytes (the lossless ``png``/zlib baseline, or ``jpeg``) / cut bytes, per cut (in cut order)."""
        base = self.wire.input_compressed_bytes if baseline == "png" else self.jpeg_bytes
        if base is None:
            return [float("nan")] * len(self.cuts)
        return [base / self.size(row, encoding) for row in self.wire.cuts]

    def best(self, encoding: str = LOSSLESS, before_last_layers: int = 0) -> tuple[Cut, float] | None:
        """The feature-layer cut that saves most, among those at least ``before_last_layers`` layers before
        the output."""
        pool = [(s, c) for k, (c, s) in enumerate(zip(self.cuts, self.savings(encoding)))
                if self.feature(k) and self.depth(c) >= before_last_layers]
        if not pool:
            return None
        s, c = max(pool, key=lambda x: (x[0], -x[1].index))
        return c, s

    def at(self, scope: str, encoding: str = LOSSLESS) -> tuple[Cut, float] | None:
        """The cut at the end of the block whose node names start with ``scope`` (e.g. layer_11), and its saving."""
        hits = [k for k, c in enumerate(self.cuts) if c.node == scope or c.node.startswith(scope + ".")]
        if not hits:
            return None
        k = hits[-1]
        return self.cuts[k], self.savings(encoding)[k]

    def no_block(self, scope: str) -> str:
        """Why :meth:`at` finds no cut for ``scope``: no node is the block or in it, with the nearest block name."""
        blocks = sorted({c.node.split(".")[0] for c in self.cuts})
        return (f"no cut ends a block named {scope!r}{did_you_mean(scope, blocks)} (a cut's node is the block "
                f"or its name starts with the block's and '.')")

    def saving_depth(self, encoding: str = LOSSLESS) -> int:
        """Depth of the earliest cut that saves bandwidth (0 when none does); the output itself is no cut."""
        depths = [self.depth(c) for c, s in zip(self.cuts, self.savings(encoding)) if s > 1.0 and self.depth(c) >= 1]
        return max(depths, default=0)

    def table(self) -> list[dict[str, Any]]:
        """Per-cut rows for a record: name, op, depth, tensors, bytes by encoding, savings against PNG and JPEG."""
        jpeg = self.savings(LOSSLESS, "jpeg")
        return [{"cut": c.name, "op_type": c.op_type, "depth_layers": self.depth(c), "feature_layer": self.feature(k),
                 "tensors": list(c.tensors), "bytes": row.sizes, "saving_lossless": s,
                 "saving_lossless_vs_jpeg": jpeg[k] if self.jpeg_bytes else None}
                for k, (c, row, s) in enumerate(zip(self.cuts, self.wire.cuts, self.savings()))]


def load_onnx(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises protobuf's DecodeError and others
        raise ModelError(f"{path}: not a readable ONNX model: {exc}") from None


def input_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...]]:
    """Each graph input (not an initializer) and its declared shape, in graph order."""
    inits = {t.name for t in model.graph.initializer}
    return {i.name: tuple(d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim)
            for i in model.graph.input if i.name not in inits}


def study_cuts(model: onnx.ModelProto, count: int, preprocess: Preprocess | None,
               input_set: dict[str, Any] | None = None) -> CutStudy:
    """Bytes at every single-tensor cut over ``count`` inputs (photographs when ``preprocess`` is given)."""
    graph = GraphCuts(model)
    cuts = layer_boundaries(graph, [c for c in graph.cuts() if c.single])
    if not cuts:
        raise ModelError(f"'{model.graph.name}' has no single-tensor cut (every cut leaves a branch open)")
    samples = samples_for(input_shapes(model), count, preprocess)
    acts = activations(graph, [c.tensors[0] for c in cuts], [s.feeds for s in samples], threads=1)
    report = measure_cut_bytes([c.name for c in cuts], [c.tensors for c in cuts], acts,
                               [s.raw_bytes for s in samples], [s.compressed_bytes for s in samples],
                               samples[0].compressed_format)
    shapes = [tuple(acts[0][c.tensors[0]].shape[1:]) for c in cuts]
    return CutStudy(graph, cuts, samples, report, shapes, input_set or {}, preprocess)


def study_file(path: str, count: int, declared: Preprocess | None = None,
               params: dict[str, Any] | None = None) -> CutStudy:
    """:func:`study_cuts` of a model file: what a bench runs in the device's worker (a path pickles cheaply).

    An image input is fed photographs preprocessed as the model declares (``declared``, else its
    [models] ``params.preprocess``, else the assumed recipe, which the record says), sized for the
    first image input; every other input seeded smooth fields. ``inputs`` in the record says which."""
    model = load_onnx(Path(path))
    shapes = input_shapes(model)
    images = [s for s in shapes.values() if image_layout(s) is not None]
    if not images:
        return study_cuts(model, count, None, {"name": "seeded smooth fields (not an image input)", "views": count,
                                               "inputs": input_kinds(shapes, None)})
    pre = preprocess_for(declared, params or {}, images[0])
    described = {**evaluation_photos(pre).describe(), "views": f"the centre view of each photograph, up to {count}",
                 "inputs": input_kinds(shapes, pre)}
    return study_cuts(model, count, pre, described)


def tier_encoding(encoding: str, precision: str) -> str:
    """The wire key a tier sends: a tier whose accelerator computes in int8 sends int8 codes, same codec."""
    return f"int8+{encoding.split('+', 1)[1]}" if precision == "int8" else encoding


@dataclass
class PlanStudy:
    """A split problem built from measurements, its constraints and its best plans."""

    problem: SplitProblem
    constraints: list[Constraint]
    plans: list[Plan]
    boundaries: list[int]
    links: dict[tuple[str, str], LinkProfile]
    encoding: str = "raw+none"  # how fp32 tiers send the cut tensors (priced so, sent so)
    precision: dict[str, str] = field(default_factory=dict)  # tier -> "int8" when its device computes in int8
    # per plan: top-1 agreement with the whole fp32 model when each link carries what the plan sends
    agreement: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chosen(self) -> Plan:
        return self.plans[0]

    def encodings(self, chosen: Plan) -> list[str]:
        """What each of the plan's transfers carries: the sending tier's precision in the study's codec."""
        return [tier_encoding(self.encoding, self.precision.get(t.src, "fp32")) for t in chosen.transfers]


def study_plan(study: CutStudy, links: Mapping[tuple[str, str], LinkProfile], tiers: Sequence[str],
               repeats: int = 5, top: int = 5, encoding: str = "raw+none", objective: str = "latency",
               precision: Mapping[str, str] | None = None, trained: bool = False) -> PlanStudy:
    """Profile each block on this host and plan the split over the study's cuts.

    Every tier's per-block latency is this host's (one machine plays every tier), so the
    cheapest plan would keep everything on the device; the raw input stays on the first tier
    and the last block is pinned to the last tier, which makes the plan cross the links.
    Bytes at each cut are the study's mean bytes in ``encoding`` (a wire key, 'fp16+zstd'), or, from
    a tier whose ``precision`` is int8, in int8 with the same codec (Mukherjee & Dey weigh the
    quantisation an accelerator's SDK imposes): the planner prices each transfer in what its sender
    sends. With ``trained`` weights each plan's accuracy change is measured on every evaluation view.
    """
    graph, first = study.graph, study.samples[0]
    precision = dict(precision or {})
    feed = first.feeds
    boundaries = [0, *(c.index for c in study.cuts), graph.size]
    compute = block_latencies(graph, boundaries, feed, repeats=repeats)
    outputs = float(sum(v.nbytes for v in _outputs(graph, feed).values()))
    sizes = {}
    for tier in tiers:
        key = tier_encoding(encoding, precision.get(tier, "fp32"))
        study.size(study.wire.cuts[0], key)  # ConfigError naming the known encodings if unmeasured
        sizes[tier] = [float(first.nbytes), *(row.sizes[key] for row in study.wire.cuts), outputs]
    problem = SplitProblem(tuple(tiers), {t: compute for t in tiers}, sizes[tiers[0]], dict(links),
                           block_names=tuple(f"{a}:{b}" for a, b in itertools.pairwise(boundaries)),
                           tier_bytes=sizes)
    constraints: list[Constraint] = [KeepInputOnDevice(), Pin(problem.blocks - 1, tiers[-1])]
    plans = plan(problem, objective, constraints, top=top)
    planned = PlanStudy(problem, constraints, plans, boundaries, dict(links), encoding, precision)
    planned.agreement = [plan_agreement(study, planned, p, trained) for p in plans]
    return planned


def agreement_feeds(study: CutStudy) -> tuple[list[dict[str, np.ndarray]], str] | None:
    """The queries a plan's agreement is judged on, and what they are (None: the model has no image input
    of the study's preprocessing): every evaluation view on each image input (a second image input the
    next view, as samples_for does), the study's seeded fields cycled on every other input."""
    if study.preprocess is None:
        return None
    kinds = input_kinds(input_shapes(study.graph.model), study.preprocess)
    images = [n for n, k in kinds.items() if k == PHOTOGRAPHS]
    if not images:
        return None
    views = evaluation_photos(study.preprocess).tensors()
    feeds = [{**study.samples[q % len(study.samples)].feeds,
              **{n: views[(q + k) % len(views)][None] for k, n in enumerate(images)}} for q in range(len(views))]
    others = [n for n in kinds if n not in images]
    what = f"{len(views)} views of {study.input_set.get('name')}"
    if others:
        what += f" on {', '.join(images)}, beside seeded smooth fields on {', '.join(others)} (synthetic)"
    return feeds, what


def plan_agreement(study: CutStudy, planned: PlanStudy, chosen: Plan, trained: bool) -> dict[str, Any]:
    """Top-1 agreement with the whole model when the plan's links carry its encodings, on every evaluation view.

    Raw fp32 on every link is lossless (exactly 1.0, nothing to measure); a lossy link on seeded weights
    is not measurable (its outputs mean nothing), nor on a model without an image input (no photographs to
    judge it on); otherwise each query (agreement_feeds: several inputs included) runs stage by stage,
    each crossing tensor encoded and decoded as the wire would."""
    keys = planned.encodings(chosen)
    if all(k.startswith("raw+") for k in keys):
        return {"top1_agreement": 1.0, "encodings": keys, "method": "exact: raw tensors are sent losslessly"}
    judged = agreement_feeds(study) if trained else None
    if judged is None:
        why = "seeded weights" if not trained else "not an image model (no photographs to judge it on)"
        return {"top1_agreement": None, "encodings": keys, "method": f"not measurable: {why}"}
    graph = study.graph
    feeds, what = judged
    reference = activations(graph, list(graph.boundary(graph.size)), feeds, threads=1)
    stages, _ = stages_for(chosen, planned.boundaries, planned.links)
    sessions = [SegmentSession(graph.segment(s.start, s.stop), threads=1) if s.stop > s.start else None
                for s in stages]  # a relay-only tier computes nothing
    try:
        agree = []
        for feed, ref in zip(feeds, reference):
            values: dict[str, np.ndarray] = dict(feed)
            for i, (stage, session) in enumerate(zip(stages, sessions)):
                if session is not None:
                    values.update(session.run({n: values[n] for n in session.segment.inputs}))
                if i < len(keys):  # what crosses the next link, as the wire carries it
                    encoding = keys[i].split("+", 1)[0]
                    for t in graph.boundary(stage.stop):
                        v = values[t]
                        sent = wire_encoding(v, encoding)  # an integer tensor travels raw
                        values[t] = decode(encode(v, sent), sent, v.dtype, v.shape)
            first = next(iter(ref))
            agree.append(bool(np.array_equal(np.argmax(values[first], -1), np.argmax(ref[first], -1))))
    finally:
        for session in sessions:
            if session is not None:
                session.close()
    return {"top1_agreement": float(np.mean(agree)), "encodings": keys, "views": len(feeds),
            "method": f"measured: top-1 against the whole fp32 model on {what}"}


def term_errors(measured: SplitMeasurement) -> dict[str, float]:
    """Measured minus predicted seconds per term (compute, message CPU, link), each summed over the plan's
    stages or links, from the medians of every term: which term a prediction error comes from."""
    got, want = measured.extra["measured_terms"], measured.extra["predicted_terms"]
    return {k: float(sum(got[k]) - sum(want[k])) for k in ("compute_s", "message_s", "link_s")}


def plan_terms(chosen: Plan) -> dict[str, list[float]]:
    """A plan's predicted seconds, term by term, in the shape of SplitMeasurement.terms."""
    return {"compute_s": [s.compute_s for s in chosen.stages], "message_s": [s.message_s for s in chosen.stages],
            "link_s": [t.seconds for t in chosen.transfers]}


def run_plan(study: CutStudy, planned: PlanStudy, runs: int = 5, warmup: int = 1,
             timeout_s: float = 60.0, network: str = "user", calibration: int = CALIBRATION) -> SplitMeasurement:
    """Run the chosen plan in separate processes over shaped links (``network``: execute.NETWORKS),
    one inference at a time, or pipelined when the plan's objective is throughput, each link carrying
    what its sending tier sends; SplitExecutionError keeps partials.

    First ``calibration`` inferences measure each message's cost on these stages and links; the
    prediction compared with the measured runs is the plan re-priced with them (``extra`` keeps the
    uncalibrated prediction and every term, predicted and measured)."""
    graph = study.graph
    chosen = planned.chosen
    stages, stage_links = stages_for(chosen, planned.boundaries, planned.links)
    samples = [s.feeds for s in study.samples]
    feeds = (samples * (runs // len(samples) + 1))[:runs]
    reference = [_outputs(graph, f) for f in feeds]
    with SplitExecutor(graph, stages, stage_links, timeout_s=timeout_s, network=network,
                       encodings=planned.encodings(chosen)) as ex:
        measured_cost = ex.calibrate((samples * (calibration // len(samples) + 1))[:calibration], warmup=warmup)
        priced = measured_cost.reprice(planned.problem, chosen)
        if chosen.objective == "throughput":
            measured = ex.measure_pipelined(feeds, warmup=0, reference=reference, window=pipeline_window(priced))
            measured.predicted_throughput_per_s = priced.throughput_per_s
        else:
            measured = ex.measure(feeds, warmup=0, reference=reference)
    measured.predicted_s = priced.latency_s
    measured.extra.update({
        "calibration": measured_cost.to_dict(), "uncalibrated_predicted_s": chosen.latency_s,
        "uncalibrated_predicted_throughput_per_s": chosen.throughput_per_s,
        "predicted_terms": plan_terms(priced), "uncalibrated_predicted_terms": plan_terms(chosen),
        "measured_terms": {**measured.terms, "message_s": [r + s for r, s in zip(measured.terms.get("receive_s", []),
                                                                                  measured.terms.get("send_s", []))]},
    })
    return measured


def _outputs(graph: GraphCuts, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return activations(graph, list(graph.boundary(graph.size)), [feed], threads=1)[0]
