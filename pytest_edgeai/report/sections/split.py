"""Split: bytes on the wire at each cut (raw, fp16, int8, compressed) and the chosen plan."""

from .sweep import SuiteSection

SECTION = SuiteSection("split", "Split: bytes per cut and the chosen plan", ("cuts", "sweep"),
                       y_filter=lambda column: "bytes" in column, log_y=True, per_record=True,
                       y_label="bytes on the wire (log scale)")
