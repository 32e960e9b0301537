"""Inception-v4 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning"), the timm / Cadene pretrainedmodels layout.

Why this layout: it is the one characterisation studies run (via TF-slim or timm) and
its parameter count is published: timm inception_v4 = 42,679,816 (incl. BN gamma/beta).
Every conv is conv(no bias)-BN(eps 1e-3)-ReLU ("BasicConv2d").
"""

from __future__ import annotations

from collections.abc import Callable

import onnx

from .graph import GraphBuilder, KernelSize, Padding, output_info


def _conv(gb: GraphBuilder, x: str, c: int, k: KernelSize, s: int = 1,
          p: Padding = "valid", scope: str = "conv") -> str:
    return gb.conv_bn_act(x, c, k, s, p, act="relu", scope=scope)


def _chain(gb: GraphBuilder, x: str, specs: list[tuple[int, KernelSize, int, Padding]],
           scope: str) -> str:
    """A branch: a sequence of (channels, kernel, stride, padding) BasicConv2d units."""
    for i, (c, k, s, p) in enumerate(specs):
        x = _conv(gb, x, c, k, s, p, scope=f"{scope}.{i}")
    return x


def _pool_proj(gb: GraphBuilder, x: str, c: int, scope: str) -> str:
    return _conv(gb, gb.avg_pool(x, 3, 1, 1), c, 1, scope=scope)


def stem(gb: GraphBuilder, x: str) -> str:
    """299x299x3 -> 35x35x384 (Fig. 3 of the paper; Mixed_3a, 4a, 5a in timm)."""
    y = _chain(gb, x, [(32, 3, 2, "valid"), (32, 3, 1, "valid"), (64, 3, 1, "same")], "stem")
    y = gb.concat([gb.max_pool(y, 3, 2), _conv(gb, y, 96, 3, 2, scope="mixed_3a")])
    y = gb.concat([
        _chain(gb, y, [(64, 1, 1, "valid"), (96, 3, 1, "valid")], "mixed_4a.b0"),
        _chain(gb, y, [(64, 1, 1, "valid"), (64, (1, 7), 1, "same"), (64, (7, 1), 1, "same"),
                       (96, 3, 1, "valid")], "mixed_4a.b1"),
    ])
    return gb.concat([_conv(gb, y, 192, 3, 2, scope="mixed_5a"), gb.max_pool(y, 3, 2)])


def inception_a(gb: GraphBuilder, x: str, scope: str) -> str:
    return gb.concat([
        _conv(gb, x, 96, 1, scope=f"{scope}.b0"),
        _chain(gb, x, [(64, 1, 1, "same"), (96, 3, 1, "same")], f"{scope}.b1"),
        _chain(gb, x, [(64, 1, 1, "same"), (96, 3, 1, "same"), (96, 3, 1, "same")],
               f"{scope}.b2"),
        _pool_proj(gb, x, 96, f"{scope}.b3"),
    ])


def reduction_a(gb: GraphBuilder, x: str, scope: str) -> str:
    return gb.concat([
        _conv(gb, x, 384, 3, 2, scope=f"{scope}.b0"),
        _chain(gb, x, [(192, 1, 1, "same"), (224, 3, 1, "same"), (256, 3, 2, "valid")],
               f"{scope}.b1"),
        gb.max_pool(x, 3, 2),
    ])


def inception_b(gb: GraphBuilder, x: str, scope: str) -> str:
    return gb.concat([
        _conv(gb, x, 384, 1, scope=f"{scope}.b0"),
        _chain(gb, x, [(192, 1, 1, "same"), (224, (1, 7), 1, "same"),
                       (256, (7, 1), 1, "same")], f"{scope}.b1"),
        _chain(gb, x, [(192, 1, 1, "same"), (192, (7, 1), 1, "same"),
                       (224, (1, 7), 1, "same"), (224, (7, 1), 1, "same"),
                       (256, (1, 7), 1, "same")], f"{scope}.b2"),
        _pool_proj(gb, x, 128, f"{scope}.b3"),
    ])


def reduction_b(gb: GraphBuilder, x: str, scope: str) -> str:
    return gb.concat([
        _chain(gb, x, [(192, 1, 1, "same"), (192, 3, 2, "valid")], f"{scope}.b0"),
        _chain(gb, x, [(256, 1, 1, "same"), (256, (1, 7), 1, "same"),
                       (320, (7, 1), 1, "same"), (320, 3, 2, "valid")], f"{scope}.b1"),
        gb.max_pool(x, 3, 2),
    ])


def inception_c(gb: GraphBuilder, x: str, scope: str) -> str:
    b1 = _conv(gb, x, 384, 1, scope=f"{scope}.b1.0")
    b2 = _chain(gb, x, [(384, 1, 1, "same"), (448, (3, 1), 1, "same"),
                        (512, (1, 3), 1, "same")], f"{scope}.b2")
    return gb.concat([
        _conv(gb, x, 256, 1, scope=f"{scope}.b0"),
        _conv(gb, b1, 256, (1, 3), p="same", scope=f"{scope}.b1.1a"),
        _conv(gb, b1, 256, (3, 1), p="same", scope=f"{scope}.b1.1b"),
        _conv(gb, b2, 256, (1, 3), p="same", scope=f"{scope}.b2.3a"),
        _conv(gb, b2, 256, (3, 1), p="same", scope=f"{scope}.b2.3b"),
        _pool_proj(gb, x, 256, f"{scope}.b3"),
    ])


STAGES: tuple[tuple[Callable[[GraphBuilder, str, str], str], int, str], ...] = (
    (inception_a, 4, "inception_a"), (reduction_a, 1, "reduction_a"),
    (inception_b, 7, "inception_b"), (reduction_b, 1, "reduction_b"),
    (inception_c, 3, "inception_c"),
)


def build(num_classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """Inception-v4 classifier: input [N,3,299,299] -> logits [N,num_classes]."""
    gb = GraphBuilder(seed)
    inp = gb.input("input", ["N", 3, 299, 299])
    y = stem(gb, "input")
    for block, repeats, name in STAGES:
        for i in range(repeats):
            y = block(gb, y, f"{name}_{i}")
    y = gb.flatten(gb.global_avg_pool(y), gb.channels[y])
    logits = gb.rename(gb.linear(y, num_classes, scope="last_linear"), "logits")
    return gb.finish("inception_v4", [inp], [output_info(logits, ["N", num_classes])],
                     doc="Inception-v4 image classifier (timm/Cadene layout)")
