"""Split processing across device, edge and cloud (issue 5).

- cuts: where an ONNX graph can be cut, crossing tensors, head/tail/segment extraction
- runner: onnxruntime sessions for segments; activations at cuts
- inputs: deterministic image-like inputs and the cost of sending one whole (PNG)
- wire: bytes at each cut (raw / fp16 / int8, each with zlib / zstd / lz4)
- network: link profiles and transfer time
- constraints, planner: the exact top-N plans by dynamic programming
- link, execute: split execution over TCP with a shaped link, measured against the plan
"""
