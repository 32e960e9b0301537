"""Through pytester: where network namespaces are refused, the split plan's scenario says only "user"
(user-space shaped links), and why they were refused (a pid and a random probe name) goes into the
record's warnings: a comparison key holding it would pair the record with no other run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_split_suite_inputs import DEVICES, run_split_suite, two_input_cnn

from pytest_edgeai.results.compare import record_key
from pytest_edgeai.results.record import Record

REFUSED = '''
import os
import secrets

from pytest_edgeai.split import netns

REASON = f"'ip netns add edgeai-{os.getpid()}-{secrets.token_hex(2)}-probe ...' failed here: Operation not permitted"
netns.unavailable = lambda: REASON  # as in a container without CAP_NET_ADMIN
'''


def test_a_refused_namespace_reason_is_a_warning_not_part_of_the_comparison_key(pytester: pytest.Pytester):
    pytest.importorskip("PIL", reason="photographs are decoded with Pillow")
    two_input_cnn(pytester.path / "usertwo.onnx")
    pytester.makefile(".toml", devices=DEVICES)
    pytester.makeconftest(REFUSED)
    result = run_split_suite(pytester, "usertwo.onnx", "usertwo and planned")
    result.assert_outcomes(passed=1)
    (path,) = [p for p in (pytester.path / "reports" / "latest" / "records").glob("*.json")
               if json.loads(p.read_text())["scenario"]["name"] == "split_plan"]
    planned = Record.from_dict(json.loads(Path(path).read_text()))
    assert planned.scenario["network"] == "user"
    (said,) = [w for w in planned.warnings if w.startswith("links shaped in user space")]
    assert "-probe ...' failed here: Operation not permitted" in said
    assert dict(record_key(planned).params)["network"] == "user"  # what a run where another pid was refused has
