"""Where an ONNX graph can be cut into a head and a tail, and the two halves as models.

A cut is a position ``k`` in the graph's topological node order: the head runs nodes
``[0, k)``, the tail nodes ``[k, n)``. The tensors that *cross* the cut are those available
before it (graph inputs or head outputs) that the tail still needs, plus graph outputs the
head already produced (they must reach the tier that delivers the result). Weights are not
crossing tensors: initializers and ``Constant`` outputs travel with whichever half uses them.

In a chain one tensor crosses every cut; in a DAG (Inception) most cuts sit inside a block
with parallel branches open, and several tensors cross. Every cut is listed; ``single``
marks the single-tensor ones, the split points Scission calls valid.

Depth is counted in network layers, as papers count them: the weighted ops (convolutions, fully
connected layers) on the longest path from a tensor to the output. A BatchNorm, an activation or
a reshape is not a layer, so the same network with BatchNorm folded into its convolutions (or
quantised into Q/DQ pairs) has the same depth at the same cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from ..errors import ModelError

# ops that hold learned weights: a layer when one of their inputs is a weight
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "ConvInteger", "MatMulInteger",
                          "QLinearConv", "QLinearMatMul", "LSTM", "GRU", "RNN"})


@dataclass(frozen=True)
class Cut:
    """One place to cut: after node ``index - 1`` (the node that produces the boundary)."""

    index: int                 # head = nodes[:index]
    node: str                  # name (or op_type) of the last head node
    op_type: str
    tensors: tuple[str, ...]   # crossing tensors, in a stable order (first produced first)

    @property
    def single(self) -> bool:
        return len(self.tensors) == 1

    @property
    def name(self) -> str:
        return f"{self.index}:{self.node}"


def node_inputs(node: onnx.NodeProto) -> set[str]:
    """Every tensor a node reads, including outer-scope names its subgraphs use."""
    names = {n for n in node.input if n}
    for attr in node.attribute:
        graphs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
        for g in graphs:
            names |= _outer_names(g)
    return names


def _outer_names(graph: onnx.GraphProto) -> set[str]:
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        used |= {n for n in node_inputs(node) if n not in defined}
        defined |= set(node.output)
    return used


def _constant_names(graph: onnx.GraphProto) -> set[str]:
    """Tensors that are weights, not activations: initializers and Constant outputs."""
    names = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            names |= set(node.output)
    return names


class GraphCuts:
    """A graph analysed once: where each activation is produced and last used.

    Positions run 0..n over the compute nodes (``Constant`` nodes are weights, not compute);
    ``boundary(k)`` is what crosses position k: the graph inputs at 0, the outputs at n.
    """

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        graph = model.graph
        self.nodes = [n for n in graph.node if n.op_type != "Constant"]
        self.constants = _constant_names(graph)
        produced_at = {i.name: 0 for i in graph.input if i.name not in self.constants}
        last_use: dict[str, int] = {}
        for pos, node in enumerate(self.nodes):
            for name in node_inputs(node) - self.constants:
                if name not in produced_at:
                    raise ModelError(
                        f"model '{graph.name or '?'}': node {node.name or node.op_type} (position {pos}) "
                        f"reads '{name}', which no earlier node, input or initializer provides; "
                        "the graph is not in topological order or is incomplete")
                last_use[name] = pos
            for out in node.output:
                if out:
                    produced_at[out] = pos + 1
        for out in graph.output:
            last_use[out.name] = len(self.nodes)
        self._live = sorted(((produced_at[t], last, t) for t, last in last_use.items()
                             if t in produced_at), key=lambda x: (x[0], x[2]))
        self._types = _value_infos(model)
        self._depth: dict[str, int] | None = None

    @property
    def size(self) -> int:
        return len(self.nodes)

    def elements(self, tensors: Sequence[str]) -> int | None:
        """Elements per sample of ``tensors`` (dims after the first), None when shape inference left one unknown."""
        total = 0
        for name in tensors:
            info = self._types.get(name)
            if info is None:
                return None
            dims = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
            known = [d for d in dims[1:] if d is not None]
            if len(known) != len(dims) - 1:
                return None
            total += int(np.prod(known, dtype=np.int64))
        return total

    def layer_depth(self, tensors: Sequence[str]) -> int:
        """Network layers (weighted ops) on the longest path from any of ``tensors`` to an output."""
        if self._depth is None:
            self._depth = _layer_depths(self.model.graph, self.nodes, self.constants)
        return max((self._depth.get(t, 0) for t in tensors), default=0)

    def boundary(self, k: int) -> tuple[str, ...]:
        """Tensors available before position k that are needed at or after it."""
        return tuple(t for p, last, t in self._live if p <= k <= last)

    def cuts(self) -> list[Cut]:
        """Every interior cut (positions 1..n-1); ModelError when there is none."""
        if self.size < 2:
            raise ModelError(
                f"model '{self.model.graph.name or '?'}' has no valid cut: it has {self.size} compute "
                "node(s), and a cut needs at least one node on each side")
        out = []
        for k in range(1, self.size):
            node = self.nodes[k - 1]
            out.append(Cut(index=k, node=node.name or node.op_type, op_type=node.op_type,
                           tensors=self.boundary(k)))
        return out

    def segment(self, start: int, stop: int) -> Segment:
        """Nodes [start, stop) as a standalone model fed by ``boundary(start)``."""
        if not 0 <= start <= stop <= self.size:
            raise ModelError(f"segment [{start}, {stop}) is outside the graph's 0..{self.size} positions")
        nodes = self.nodes[start:stop]
        produced = {o for n in nodes for o in n.output if o}
        used = set().union(*(node_inputs(n) for n in nodes)) if nodes else set()
        inputs = self.boundary(start)
        outputs = self.boundary(stop)
        graph = self.model.graph
        consts = [n for n in graph.node if n.op_type == "Constant" and set(n.output) & used]
        inits = [t for t in graph.initializer if t.name in used]
        g = helper.make_graph(
            consts + list(nodes), f"{graph.name}[{start}:{stop}]",
            [self._info(t) for t in inputs if t in used],
            [self._info(t) for t in outputs if t in produced],
            initializer=inits)
        model = helper.make_model(g, opset_imports=list(self.model.opset_import),
                                  producer_name="pytest-edgeai split")
        model.ir_version = self.model.ir_version
        model.functions.extend(self.model.functions)
        return Segment(model=model, start=start, stop=stop, inputs=inputs, outputs=outputs,
                       passthrough=tuple(t for t in outputs if t not in produced))

    def with_outputs(self, tensors: Sequence[str]) -> onnx.ModelProto:
        """A copy of the model that also returns ``tensors`` (to read activations at cuts)."""
        probe = onnx.ModelProto()
        probe.CopyFrom(self.model)
        present = {o.name for o in probe.graph.output}
        probe.graph.output.extend(self._info(t) for t in tensors if t not in present)
        return probe

    def _info(self, name: str) -> onnx.ValueInfoProto:
        if name not in self._types:
            raise ModelError(f"model '{self.model.graph.name or '?'}': shape inference gave no type for "
                             f"tensor '{name}', so it cannot be a segment's input or output")
        return self._types[name]


@dataclass(frozen=True)
class Segment:
    """A standalone piece of a model: what it reads, what it hands on, what it passes through."""

    model: onnx.ModelProto
    start: int
    stop: int
    inputs: tuple[str, ...]       # boundary(start): everything the piece receives
    outputs: tuple[str, ...]      # boundary(stop): everything it hands on
    passthrough: tuple[str, ...]  # received and handed on untouched (not produced here)


def _layer_depths(graph: onnx.GraphProto, nodes: Sequence[onnx.NodeProto], constants: set[str]) -> dict[str, int]:
    """tensor -> weighted ops on its longest path to a graph output (tensors that reach none: absent)."""
    weights = set(constants)  # plus what is computed from weights alone (DequantizeLinear of a weight, ...)
    for node in nodes:
        ins = node_inputs(node)
        if ins and ins <= weights:
            weights |= {o for o in node.output if o}
    depth = {o.name: 0 for o in graph.output}
    for node in reversed(nodes):
        reached = [depth[o] for o in node.output if o in depth]
        if not reached:
            continue
        ins = node_inputs(node)
        d = max(reached) + int(node.op_type in WEIGHTED_OPS and bool(ins & weights) and not ins <= weights)
        for name in ins - weights:
            depth[name] = max(depth.get(name, 0), d)
    return depth


def _value_infos(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises several unrelated types for a bad graph
        raise ModelError(f"model '{model.graph.name or '?'}': shape inference failed: {exc}") from None
    g = inferred.graph
    return {v.name: v for v in (*g.value_info, *g.input, *g.output) if v.type.HasField("tensor_type")}


def layer_boundaries(graph: GraphCuts, cuts: Sequence[Cut]) -> list[Cut]:
    """One cut per layer boundary: of the cuts at the same depth that carry a tensor of the same size,
    the last (the tensor the next layer reads, after BatchNorm and activation), so folding BatchNorm
    leaves the same set of cuts; a pooled tensor differs in size from the feature map before it."""
    last: dict[tuple[int, object], Cut] = {}
    for cut in cuts:
        last[(graph.layer_depth(cut.tensors), graph.elements(cut.tensors) or cut.name)] = cut
    return sorted(last.values(), key=lambda c: c.index)


def find_cuts(model: onnx.ModelProto) -> list[Cut]:
    """Every interior cut of the graph, each with its crossing tensors."""
    return GraphCuts(model).cuts()


def head_tail(model: onnx.ModelProto, cut: Cut) -> tuple[Segment, Segment]:
    """The two halves of ``model`` at ``cut``."""
    g = GraphCuts(model)
    return g.segment(0, cut.index), g.segment(cut.index, g.size)
