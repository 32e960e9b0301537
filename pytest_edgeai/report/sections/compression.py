"""Compression: size, speed-up, agreement and offloaded fraction against the threshold or precision."""

from .sweep import SuiteSection

SECTION = SuiteSection("compression", "Compression trade-offs", ("sweep",))
