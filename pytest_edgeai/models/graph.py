"""A small ONNX graph builder shared by every zoo model.

Why: the reference workloads are built from a handful of blocks (conv-BN-act,
depthwise-separable, inverted residual, SSD heads); building them here once keeps
the builders short and free of copy-paste twins, and keeps weight initialisation
deterministic (one seeded RNG consumed in graph order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR that opset 17 shipped with: readable by older runtimes too
PRODUCER = "pytest-edgeai"
BN_EPSILON = 1e-3  # TF slim / timm Inception default; torchvision's MobileNetV2 uses 1e-5

KernelSize = int | tuple[int, int]
Padding = str | int | tuple[int, int]  # "same" (k//2 each side), "valid", or explicit


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class GraphBuilder:
    """Accumulates nodes and initializers; tracks the channel count of each tensor.

    Tensor names are generated from a scope prefix and a counter so that the same
    build always yields the same names (and so byte-identical files).
    """

    def __init__(self, seed: int = 0, bn_epsilon: float = BN_EPSILON) -> None:
        self.rng = np.random.default_rng(seed)
        self.bn_epsilon = bn_epsilon
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.weights: list[int] = []  # indices into initializers of learned tensors, in graph order
        self.channels: dict[str, int] = {}
        self._counter = 0
        self._consts: dict[tuple[str, bytes], str] = {}

    # -- naming and tensors -------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter}"

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def add_weight(self, name: str, array: np.ndarray) -> str:
        """A learned tensor (conv/FC weight and bias, BN parameters and statistics)."""
        self.weights.append(len(self.initializers))
        return self.add_initializer(name, array)

    def weight_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(self.initializers[i].dims) for i in self.weights]

    def assign(self, arrays: Sequence[np.ndarray]) -> None:
        """Replace the learned tensors, in graph order, with trained ones of the same shapes."""
        if len(arrays) != len(self.weights):
            raise ValueError(f"{len(arrays)} tensors for {len(self.weights)} learned tensors")
        for i, array in zip(self.weights, arrays):
            old = self.initializers[i]
            if tuple(array.shape) != tuple(old.dims):
                raise ValueError(f"tensor {old.name} is {list(old.dims)}, the trained one {list(array.shape)}")
            self.initializers[i] = numpy_helper.from_array(np.ascontiguousarray(array, np.float32), old.name)

    def constant(self, array: np.ndarray, prefix: str = "const") -> str:
        """A shared non-weight initializer (shapes, clip bounds)."""
        key = (str(array.dtype) + str(array.shape), array.tobytes())
        if key not in self._consts:
            self._consts[key] = self.add_initializer(self.fresh(prefix), array)
        return self._consts[key]

    def node(self, op: str, inputs: Sequence[str], channels: int | None = None,
             prefix: str | None = None, **attrs: Any) -> str:
        out = self.fresh(prefix or op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        if channels is not None:
            self.channels[out] = channels
        return out

    def input(self, name: str, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
        self.channels[name] = int(shape[1])
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

    # -- weights ------------------------------------------------------------
    def he_normal(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        """He-normal init: keeps activation variance ~constant through ReLU layers."""
        std = math.sqrt(2.0 / fan_in)
        weights: np.ndarray = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        return weights

    # -- layers -------------------------------------------------------------
    def conv(self, x: str, out_channels: int, kernel: KernelSize = 1, stride: KernelSize = 1,
             padding: Padding = "same", groups: int = 1, bias: bool = False,
             scope: str = "conv") -> str:
        """Conv2d, NCHW, He-initialised; "same" pads k//2 (TF SAME sizes for odd k)."""
        cin = self.channels[x]
        kh, kw = _pair(kernel)
        if padding == "same":
            ph, pw = kh // 2, kw // 2
        elif padding == "valid":
            ph, pw = 0, 0
        else:
            ph, pw = _pair(padding)  # type: ignore[arg-type]
        fan_in = (cin // groups) * kh * kw
        w = self.add_weight(self.fresh(f"{scope}.weight"),
                            self.he_normal((out_channels, cin // groups, kh, kw), fan_in))
        inputs = [x, w]
        if bias:
            inputs.append(self.add_weight(self.fresh(f"{scope}.bias"), np.zeros(out_channels, np.float32)))
        return self.node("Conv", inputs, out_channels, prefix=scope, kernel_shape=[kh, kw],
                         strides=list(_pair(stride)), pads=[ph, pw, ph, pw], group=groups)

    def batch_norm(self, x: str, scope: str = "bn") -> str:
        """Inference-mode BN with identity statistics (gamma 1, beta 0, mean 0, var 1)."""
        c = self.channels[x]
        names = []
        for part, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0),
                            ("running_var", 1.0)):
            names.append(self.add_weight(self.fresh(f"{scope}.{part}"), np.full(c, value, np.float32)))
        return self.node("BatchNormalization", [x, *names], c, prefix=scope, epsilon=self.bn_epsilon)

    def act(self, x: str, kind: str | None) -> str:
        if kind is None:
            return x
        c = self.channels[x]
        if kind == "relu":
            return self.node("Relu", [x], c)
        if kind == "relu6":
            lo = self.constant(np.array(0.0, np.float32), "clip_min")
            hi = self.constant(np.array(6.0, np.float32), "clip_max")
            return self.node("Clip", [x, lo, hi], c, prefix="relu6")
        raise ValueError(f"unknown activation {kind!r}")

    def conv_bn_act(self, x: str, out_channels: int, kernel: KernelSize = 1,
                    stride: KernelSize = 1, padding: Padding = "same", groups: int = 1,
                    act: str | None = "relu6", scope: str = "conv") -> str:
        """The ubiquitous conv (no bias) -> BN -> activation unit."""
        y = self.conv(x, out_channels, kernel, stride, padding, groups, scope=scope)
        return self.act(self.batch_norm(y, scope=f"{scope}.bn"), act)

    def depthwise_separable(self, x: str, out_channels: int, stride: int = 1,
                            act: str = "relu6", scope: str = "dwsep") -> str:
        """MobileNet V1 block: 3x3 depthwise conv-BN-act then 1x1 pointwise conv-BN-act."""
        c = self.channels[x]
        y = self.conv_bn_act(x, c, 3, stride, groups=c, act=act, scope=f"{scope}.dw")
        return self.conv_bn_act(y, out_channels, 1, act=act, scope=f"{scope}.pw")

    def inverted_residual(self, x: str, out_channels: int, stride: int, expand_ratio: int,
                          scope: str = "ir") -> tuple[str, str]:
        """MobileNet V2 block; returns (output, expansion output) since SSD taps the latter."""
        cin = self.channels[x]
        hidden = int(round(cin * expand_ratio))
        y = x
        if expand_ratio != 1:
            y = self.conv_bn_act(x, hidden, 1, scope=f"{scope}.expand")
        expansion = y
        y = self.conv_bn_act(y, hidden, 3, stride, groups=hidden, scope=f"{scope}.dw")
        y = self.conv_bn_act(y, out_channels, 1, act=None, scope=f"{scope}.project")
        if stride == 1 and cin == out_channels:
            y = self.node("Add", [x, y], out_channels, prefix=f"{scope}.add")
        return y, expansion

    def max_pool(self, x: str, kernel: KernelSize, stride: KernelSize,
                 padding: Padding = "valid") -> str:
        kh, kw = _pair(kernel)
        ph, pw = (0, 0) if padding == "valid" else ((kh // 2, kw // 2) if padding == "same"
                                                   else _pair(padding))  # type: ignore[arg-type]
        return self.node("MaxPool", [x], self.channels[x], kernel_shape=[kh, kw],
                         strides=list(_pair(stride)), pads=[ph, pw, ph, pw])

    def avg_pool(self, x: str, kernel: int, stride: int, pad: int) -> str:
        """Average pool that excludes padding (timm/Cadene count_include_pad=False)."""
        return self.node("AveragePool", [x], self.channels[x], kernel_shape=[kernel, kernel],
                         strides=[stride, stride], pads=[pad] * 4, count_include_pad=0)

    def global_avg_pool(self, x: str) -> str:
        return self.node("GlobalAveragePool", [x], self.channels[x])

    def concat(self, xs: Sequence[str], axis: int = 1) -> str:
        channels = sum(self.channels.get(x, 0) for x in xs) if axis == 1 else None
        return self.node("Concat", xs, channels, axis=axis)

    def flatten(self, x: str, features: int) -> str:
        return self.node("Flatten", [x], features, axis=1)

    def linear(self, x: str, out_features: int, bias: bool = True, scope: str = "fc",
               gain: float = 1.0) -> str:
        """Fully connected layer on [N, F]; gain=2 for ReLU follow-ups, 1 for logits."""
        fin = self.channels[x]
        w = self.he_normal((fin, out_features), fin) * np.float32(math.sqrt(gain / 2.0))
        w_name = self.add_weight(self.fresh(f"{scope}.weight"), w.astype(np.float32))
        if not bias:
            return self.node("MatMul", [x, w_name], out_features, prefix=scope)
        b_name = self.add_weight(self.fresh(f"{scope}.bias"), np.zeros(out_features, np.float32))
        return self.node("Gemm", [x, w_name, b_name], out_features, prefix=scope)

    def to_anchors(self, x: str, per_anchor: int) -> str:
        """[N, A*k, H, W] -> [N, H*W*A, k]: the TF OD API's NHWC reshape of a head."""
        y = self.node("Transpose", [x], None, perm=[0, 2, 3, 1])
        shape = self.constant(np.array([0, -1, per_anchor], np.int64), "shape")
        return self.node("Reshape", [y, shape], None)

    def rename(self, x: str, name: str) -> str:
        """Give a graph output a stable public name (an Identity node)."""
        self.nodes.append(helper.make_node("Identity", [x], [name], name=f"{name}_identity"))
        if x in self.channels:
            self.channels[name] = self.channels[x]
        return name

    # -- model --------------------------------------------------------------
    def finish(self, graph_name: str, inputs: Sequence[onnx.ValueInfoProto],
               outputs: Sequence[onnx.ValueInfoProto], doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, graph_name, list(inputs), list(outputs),
                                  initializer=self.initializers, doc_string=doc)
        model = helper.make_model(graph, producer_name=PRODUCER,
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        model.model_version = 1
        return model


def output_info(name: str, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Channel rounding used by the MobileNet family (keeps channels multiples of 8)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v
