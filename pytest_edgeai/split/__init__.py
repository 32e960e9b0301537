"""Split processing across device, edge and cloud (issue 5).

- cuts: where an ONNX graph can be cut, crossing tensors, head/tail/segment extraction
- runner: segment sessions through the backend registry; activations at cuts
- inputs: deterministic image-like inputs and the cost of sending one whole (PNG)
- wire: bytes at each cut (raw / fp16 / int8, each with zlib / zstd / lz4)
- network: link profiles and transfer time
- constraints, planner: the exact top-N plans by dynamic programming
- link, execute: split execution over TCP (the plan's encoding on the wire, authenticated, bounded),
  one inference at a time or pipelined, measured against the plan
- netns: the kernel-shaped link (namespaces, veth, tbf; netem or a delay relay) and its cleanup
- conditions: plans under a swept link rate and CPU load; fixed against re-planned, measured
"""
