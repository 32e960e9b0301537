"""SSD with MobileNet V1 / V2 feature extractors, as in the TF object-detection API's
ssd_mobilenet_v1_coco and ssd_mobilenet_v2_coco (300x300, 90 COCO classes + background).

Why one module: both share the SSD extra feature layers and the box/class heads; the
variants differ only in backbone taps, in whether the extra 3x3 stride-2 convs are
depthwise separable, and in the head kernel size (see VARIANTS).

Layout (TF OD API ``feature_map_layout``): from_layer = [tap0, tap1, '', '', '', ''],
layer_depth = [-1, -1, 512, 256, 256, 128]; each new map is 1x1 conv (depth/2) then a
3x3 stride-2 conv (depth). Anchors (ssd_anchor_generator, 6 layers, 5 aspect ratios,
reduce_boxes_in_lowest_layer): 3 per location on the first map, 6 elsewhere; with maps
19,10,5,3,2,1 that is 1917 anchors. Outputs are the raw box encodings and the sigmoid
class scores (score_converter SIGMOID) before decoding and NMS, which stay on the host.

Reference parameter counts (OpenVINO Open Model Zoo model cards, MParams of the TF
models): ssd_mobilenet_v1_coco 6.807 M (also "6.8M" in MobileNet V1 paper, Table 13);
ssd_mobilenet_v2_coco 16.818 M (its heads are 3x3 convs; SSDLite, 4.475 M, is not this).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from . import mobilenet_v2
from .graph import GraphBuilder, output_info

EXTRA_DEPTHS = (512, 256, 256, 128)
# (output channels, stride) of MobileNet V1's 13 depthwise-separable blocks
MOBILENET_V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


@dataclass(frozen=True)
class Variant:
    taps: tuple[str, str]
    depthwise_extras: bool
    head_kernel: int


VARIANTS = {
    "v1": Variant(("Conv2d_11_pointwise", "Conv2d_13_pointwise"), False, 1),
    "v2": Variant(("layer_15/expansion_output", "layer_19"), True, 3),
}


def mobilenet_v1_features(gb: GraphBuilder, x: str) -> dict[str, str]:
    """MobileNet V1 (Howard et al. 2017) body, endpoints by TF-slim name."""
    y = gb.conv_bn_act(x, 32, 3, 2, scope="Conv2d_0")
    endpoints = {"Conv2d_0": y}
    for i, (c, s) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        y = gb.depthwise_separable(y, c, s, scope=f"Conv2d_{i}")
        endpoints[f"Conv2d_{i}_pointwise"] = y
    return endpoints


def feature_maps(gb: GraphBuilder, taps: list[str], depthwise: bool) -> list[str]:
    """Append the SSD extra layers to the two backbone taps."""
    maps = list(taps)
    for i, depth in enumerate(EXTRA_DEPTHS):
        scope = f"extra_{i + 2}"
        y = gb.conv_bn_act(maps[-1], depth // 2, 1, scope=f"{scope}.1x1")
        if depthwise:
            y = gb.depthwise_separable(y, depth, 2, scope=f"{scope}.3x3_s2")
        else:
            y = gb.conv_bn_act(y, depth, 3, 2, scope=f"{scope}.3x3_s2")
        maps.append(y)
    return maps


def anchors_per_location(num_maps: int = 6) -> list[int]:
    return [3] + [6] * (num_maps - 1)


def num_anchors(resolution: int = 300) -> int:
    """Total anchors: map sizes halve (ceil) from resolution/16."""
    size, total = -(-resolution // 16), 0
    for a in anchors_per_location():
        total += size * size * a
        size = -(-size // 2)
    return total


def heads(gb: GraphBuilder, maps: list[str], num_classes: int, kernel: int) -> tuple[str, str]:
    """Box-encoding and class predictors at each map, reshaped and concatenated."""
    boxes, classes = [], []
    for i, (fmap, a) in enumerate(zip(maps, anchors_per_location(len(maps)))):
        box = gb.conv(fmap, a * 4, kernel, bias=True, scope=f"BoxPredictor_{i}.box")
        cls = gb.conv(fmap, a * num_classes, kernel, bias=True, scope=f"BoxPredictor_{i}.cls")
        boxes.append(gb.to_anchors(box, 4))
        classes.append(gb.to_anchors(cls, num_classes))
    return gb.concat(boxes), gb.node("Sigmoid", [gb.concat(classes)], None)


def build_ssd(variant: str, num_classes: int = 91, resolution: int = 300,
              seed: int = 0) -> onnx.ModelProto:
    """SSD-MobileNet: input [N,3,R,R] -> boxes [N,A,4], scores [N,A,num_classes]."""
    spec = VARIANTS[variant]
    gb = GraphBuilder(seed)
    inp = gb.input("input", ["N", 3, resolution, resolution])
    if variant == "v1":
        endpoints = mobilenet_v1_features(gb, "input")
    else:
        endpoints = mobilenet_v2.features(gb, "input")
    maps = feature_maps(gb, [endpoints[t] for t in spec.taps], spec.depthwise_extras)
    box, score = heads(gb, maps, num_classes, spec.head_kernel)
    anchors = num_anchors(resolution)
    outputs = [output_info(gb.rename(box, "boxes"), ["N", anchors, 4]),
               output_info(gb.rename(score, "scores"), ["N", anchors, num_classes])]
    return gb.finish(f"ssd_mobilenet_{variant}", [inp], outputs,
                     doc=f"SSD-MobileNet {variant} detector (TF OD API layout), pre-NMS outputs")


def build_v1(num_classes: int = 91, resolution: int = 300, seed: int = 0) -> onnx.ModelProto:
    """ssd_mobilenet_v1_coco: MobileNet V1 taps, plain extras, 1x1 heads."""
    return build_ssd("v1", num_classes, resolution, seed)


def build_v2(num_classes: int = 91, resolution: int = 300, seed: int = 0) -> onnx.ModelProto:
    """ssd_mobilenet_v2_coco: MobileNet V2 taps, depthwise extras, 3x3 heads."""
    return build_ssd("v2", num_classes, resolution, seed)
