"""Cuts of ONNX graphs: crossing tensors, and head + tail reproducing the whole model.

Synthetic chain and DAG models are checked at EVERY cut. Zoo models are checked at every
single-tensor cut, except the big ones (over 5 M parameters: ssd_mobilenet_v1 6.8 M,
ssd_mobilenet_v2 16.8 M, inception_v4 42.7 M), where each cut costs two sessions holding the
weights: for those a deterministic subset (5 evenly spaced single-tensor cuts plus the last
one) keeps this file at about 20-25 s on a 2-core CI machine. Tolerance: rtol 1e-4, atol
1e-5 x the output's largest magnitude (onnxruntime fuses differently when a graph is split).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from pytest_edgeai.errors import ModelError
from pytest_edgeai.models import zoo
from pytest_edgeai.split.cuts import GraphCuts, find_cuts, head_tail, layer_boundaries
from pytest_edgeai.split.runner import SegmentSession, activations

BIG_MODEL_PARAMS = 5_000_000
BIG_MODEL_CUTS = 5


def _model(nodes, inits, outputs, name):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def chain_model():
    rng = np.random.default_rng(0)
    inits = {f"w{i}": rng.standard_normal((4, 4)).astype(np.float32) for i in range(3)}
    nodes = []
    x = "x"
    for i in range(3):
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"mm{i}"),
                  helper.make_node("Relu", [f"m{i}"], [f"r{i}"], name=f"relu{i}")]
        x = f"r{i}"
    return _model(nodes, inits, [x], "chain")


def dag_model():
    """Two branches with a skip connection, a Constant node and an early graph output."""
    rng = np.random.default_rng(1)
    inits = {"wa": rng.standard_normal((4, 4)).astype(np.float32),
             "wb": rng.standard_normal((4, 4)).astype(np.float32)}
    nodes = [
        helper.make_node("Relu", ["x"], ["stem"], name="stem"),
        helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.float32(0.5), "half")),
        helper.make_node("MatMul", ["stem", "wa"], ["a1"], name="branch_a"),
        helper.make_node("MatMul", ["stem", "wb"], ["b1"], name="branch_b"),
        helper.make_node("Tanh", ["b1"], ["b2"], name="branch_b_act"),
        helper.make_node("Add", ["a1", "b2"], ["join"], name="join"),
        helper.make_node("Mul", ["join", "half"], ["scaled"], name="scale"),
        helper.make_node("Add", ["scaled", "stem"], ["skip"], name="skip"),
        helper.make_node("Sigmoid", ["skip"], ["y"], name="head"),
    ]
    return _model(nodes, inits, ["y", "a1"], "dag")


def split_run(model, cut, feed):
    head, tail = head_tail(model, cut)
    mid = SegmentSession(head).run(feed)
    assert set(mid) == set(cut.tensors)
    out = SegmentSession(tail).run(mid)
    return out


def full_run(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feed)))


def assert_same(got, ref):
    for name, value in ref.items():
        scale = float(np.abs(value).max()) or 1.0
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("build", [chain_model, dag_model])
def test_every_cut_of_synthetic_models_reproduces_output(build):
    model = build()
    feed = {"x": np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)}  # batch 3: dynamic
    ref = full_run(model, feed)
    cuts = find_cuts(model)
    assert [c.index for c in cuts] == list(range(1, len([n for n in model.graph.node if n.op_type != "Constant"])))
    for cut in cuts:
        assert_same(split_run(model, cut, feed), ref)


def test_chain_cuts_cross_one_tensor_and_skip_weights():
    cuts = find_cuts(chain_model())
    assert all(c.single for c in cuts)
    assert [c.tensors[0] for c in cuts] == ["m0", "r0", "m1", "r1", "m2"]
    assert cuts[1].name == "2:relu0" and cuts[1].op_type == "Relu"


def test_dag_cuts_mark_open_branches_and_keep_constants_out():
    cuts = {c.node: c for c in find_cuts(dag_model())}
    assert cuts["stem"].tensors == ("stem",)
    # branch a's output is a graph output, so it crosses every later cut; stem stays open for the skip
    assert set(cuts["branch_a"].tensors) == {"stem", "a1"}
    assert set(cuts["branch_b"].tensors) == {"stem", "a1", "b1"}
    assert set(cuts["scale"].tensors) == {"stem", "a1", "scaled"}
    assert not any(c.single for n, c in cuts.items() if n != "stem")
    assert all("half" not in c.tensors and "wa" not in c.tensors for c in cuts.values())


def test_segments_keep_the_dynamic_batch_dimension():
    model = chain_model()
    head, tail = head_tail(model, find_cuts(model)[2])
    dim = tail.model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "N"
    onnx.checker.check_model(head.model)
    onnx.checker.check_model(tail.model)


def test_activations_match_the_head_outputs():
    model = dag_model()
    feed = {"x": np.ones((2, 4), np.float32)}
    cut = find_cuts(model)[3]
    acts = activations(GraphCuts(model), cut.tensors, [feed])[0]
    head, _ = head_tail(model, cut)
    mid = SegmentSession(head).run(feed)
    for t in cut.tensors:
        np.testing.assert_array_equal(acts[t], mid[t])


def test_a_single_node_model_has_no_cut():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "one",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(ModelError, match="has no valid cut.*1 compute node"):
        find_cuts(helper.make_model(graph))


def test_unsorted_graph_is_refused():
    model = chain_model()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes[::-1])
    with pytest.raises(ModelError, match="not in topological order"):
        find_cuts(model)


@pytest.mark.parametrize("name", sorted(n for n, b in zoo.ZOO.items() if not b.defaults))  # distinct graphs
def test_single_tensor_cuts_of_zoo_models_reproduce_output(name):
    model = zoo.build(name)
    graph = GraphCuts(model)
    single = [c for c in graph.cuts() if c.single]
    assert single, f"{name} has no single-tensor cut"
    chosen = single
    if zoo.parameter_count(model) > BIG_MODEL_PARAMS:
        every = -(-len(single) // BIG_MODEL_CUTS)
        chosen = single[::every] + ([single[-1]] if (len(single) - 1) % every else [])
    inp = model.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    feed = {inp.name: np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)}
    ref = full_run(model, feed)
    for cut in chosen:
        head = SegmentSession(graph.segment(0, cut.index), threads=1)
        tail = SegmentSession(graph.segment(cut.index, graph.size), threads=1)
        assert_same(tail.run(head.run(feed)), ref)


def conv_net(bn: bool):
    """[N,3,16,16] -> Conv -> (BN) -> Relu -> Conv -> Relu -> GAP -> Flatten -> Gemm: three layers either way."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32), rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    fc, fb = rng.standard_normal((4, 5)).astype(np.float32), np.zeros(5, np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (fc, "fc"), (fb, "fb"))]
    nodes = [helper.make_node("Conv", ["img", "w1"], ["c1"], name="b1.conv", pads=[1, 1, 1, 1])]
    first = "c1"
    if bn:
        for part, value in (("s", 1.0), ("b", 0.0), ("m", 0.0), ("v", 1.0)):
            inits.append(numpy_helper.from_array(np.full(4, value, np.float32), part))
        nodes.append(helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["n1"], name="b1.bn"))
        first = "n1"
    nodes += [helper.make_node("Relu", [first], ["r1"], name="b1.relu"),
              helper.make_node("Conv", ["r1", "w2"], ["c2"], name="b2.conv", pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c2"], ["r2"], name="b2.relu"),
              helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
              helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "fc", "fb"], ["out"], name="fc")]
    graph = helper.make_graph(nodes, "convnet",
                              [helper.make_tensor_value_info("img", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 5])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_depth_is_in_network_layers_and_batchnorm_does_not_move_it():
    with_bn, folded = GraphCuts(conv_net(True)), GraphCuts(conv_net(False))
    for g in (with_bn, folded):
        cuts = layer_boundaries(g, [c for c in g.cuts() if c.single])
        assert [c.node for c in cuts] == ["b1.relu", "b2.relu", "flatten"]  # one cut per layer boundary
        assert [g.layer_depth(c.tensors) for c in cuts] == [2, 1, 1]
        assert g.layer_depth(g.boundary(0)) == 3
