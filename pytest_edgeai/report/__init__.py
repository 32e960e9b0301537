"""Rendering of result records: terminal tables and the HTML report. Knows only records."""
