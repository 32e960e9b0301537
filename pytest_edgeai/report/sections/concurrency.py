"""Concurrency: aggregate throughput and per-tenant latency against the number of tenants."""

from .sweep import SuiteSection

SECTION = SuiteSection("concurrency", "Concurrency", ("sweep",))
