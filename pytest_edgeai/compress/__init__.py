"""Model compression: quantised variants (fp16, int8 dynamic, int8 static QDQ, NNCF) and
edge/cloud cascades, with their fidelity against the fp32 model on real or deterministic inputs.

Heavy imports (onnxruntime.quantization, sklearn, skl2onnx, nncf) happen inside functions.
"""
