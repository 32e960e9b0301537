"""docs/reliability.md names the test that proves each promise: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def named_tests(text: str) -> list[tuple[str, str]]:
    """(file, test) for `tests/x.py::test_y` and the `::test_z` that follow it in the same cell."""
    found = []
    for cell in re.split(r"\|", text):
        current = None
        for file, name in re.findall(r"`(tests/[\w/]+\.py)?::(test_\w+)`", cell):
            current = file or current
            assert current, f"{name}: no test file before it in {cell!r}"
            found.append((current, name))
    return found


def test_every_test_named_in_the_reliability_promises_exists():
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    named = named_tests(text)
    assert len(named) > 30
    missing = [f"{f}::{n}" for f, n in named
               if not (ROOT / f).is_file() or not re.search(rf"^def {n}\(", (ROOT / f).read_text(), re.M)]
    assert missing == []
