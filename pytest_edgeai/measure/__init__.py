"""Timing loops, scenarios and statistics. Nothing here knows about pytest or reports."""
