"""cnn-trad-fpool3 (Sainath & Parada, "Convolutional Neural Networks for Small-footprint
Keyword Spotting", Interspeech 2015, Table 1) as an ONNX graph.

Why the paper's shape rather than speech_commands': the TF speech_commands ``conv`` model
drops the low-rank and DNN layers and pools 2x2, so it is not the published workload.
Defaults follow the paper: 32 frames (23 left + current + 8 right) x 40 log-mel, input
[N,1,32,40]; 4 output targets, which is what the table's 0.5K softmax parameters
(128 x 4 = 512) imply. Frames/mels/classes are parameters (speech_commands: 98x40, 12).

Layers: conv 64 filters 20x8 (time x freq), stride 1, valid, ReLU; non-overlapping max
pool 3 in frequency; conv 64 filters 10x4, ReLU; linear low-rank 32 (no bias, no
non-linearity); DNN 128 ReLU; softmax. Table 1 total: 244.2K parameters, weights only
(10.2K + 163.8K + 65.5K + 4.1K + 0.5K); biases add 260 more here.
"""

from __future__ import annotations

import onnx

from .graph import GraphBuilder, output_info

CONV1 = (64, (20, 8))
POOL_FREQ = 3
CONV2 = (64, (10, 4))
LOW_RANK = 32
DNN = 128


def build(num_classes: int = 4, frames: int = 32, mel_bins: int = 40,
          seed: int = 0) -> onnx.ModelProto:
    """Keyword spotter: features [N,1,frames,mel_bins] -> probabilities [N,num_classes]."""
    gb = GraphBuilder(seed)
    inp = gb.input("input", ["N", 1, frames, mel_bins])
    y = gb.act(gb.conv("input", CONV1[0], CONV1[1], padding="valid", bias=True,
                       scope="conv1"), "relu")
    y = gb.max_pool(y, (1, POOL_FREQ), (1, POOL_FREQ))
    y = gb.act(gb.conv(y, CONV2[0], CONV2[1], padding="valid", bias=True, scope="conv2"),
               "relu")
    t = frames - CONV1[1][0] + 1 - CONV2[1][0] + 1
    f = (mel_bins - CONV1[1][1] + 1) // POOL_FREQ - CONV2[1][1] + 1
    if t < 1 or f < 1:
        raise ValueError(f"input {frames}x{mel_bins} is too small for cnn-trad-fpool3")
    y = gb.flatten(y, CONV2[0] * t * f)
    y = gb.linear(y, LOW_RANK, bias=False, scope="lin")
    y = gb.act(gb.linear(y, DNN, scope="dnn", gain=2.0), "relu")
    y = gb.linear(y, num_classes, scope="softmax")
    probs = gb.rename(gb.node("Softmax", [y], num_classes, axis=-1), "probabilities")
    return gb.finish("cnn_trad_fpool3", [inp], [output_info(probs, ["N", num_classes])],
                     doc="cnn-trad-fpool3 keyword spotter (Sainath & Parada 2015)")
