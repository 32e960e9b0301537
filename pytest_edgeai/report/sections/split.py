"""Split: bytes on the wire at each cut (raw, fp16, int8, compressed) and the chosen plan."""

from .sweep import SuiteSection

SECTION = SuiteSection("split", "Split: bytes per cut and the chosen plan", ("cuts", "sweep"),
                       y_filter=lambda column: "bytes" in column or "latency" in column or "ms" in column)
