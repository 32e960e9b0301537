"""The comparison as the terminal and the HTML report show it: a change from 0, and the rule the
verdicts were judged by (compare.py's own statement of it, and the comparison's run-level gate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from markupsafe import escape

from pytest_edgeai.report.html import render
from pytest_edgeai.report.sections import ComparisonSection, ReportData
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import REGRESSED, compare_runs
from pytest_edgeai.results.record import Record, metric
from pytest_edgeai.results.store import Run, load_run


def _cascade(run: Path, loss: float, agreement: float) -> Run:
    r = Record(suite="compression", test_id="t", device=synthetic.device(), backend={"name": "onnxruntime"},
               model={"name": "digits_small"}, scenario={"name": "cascade", "link": "wifi", "threshold": 0.9})
    r.metrics = {"accuracy_loss": metric(loss, "fraction", "large-only accuracy - cascade's"),
                 "agreement_with_large": metric(agreement, "fraction", "cascade answer = large model's")}
    return Run(run, {}, [r])


def test_a_change_from_0_says_from_0_and_comes_first(tmp_path):
    """It printed '0 -> 0.03 fraction (+0.0%; ...)' and sorted last among its verdict (a change of 0)."""
    c = compare_runs(_cascade(tmp_path / "a", 0.0, 0.99), _cascade(tmp_path / "b", 0.03, 0.5))
    loss = next(d for d in c.deltas if d.metric == "accuracy_loss")
    assert loss.verdict == REGRESSED and "0 -> 0.03 fraction (from 0;" in loss.describe()
    assert "+0.0%" not in loss.describe()
    rows = ComparisonSection().build(ReportData(c.new, c, None))["rows"]
    assert [r["metric"] for r in rows] == ["accuracy_loss", "agreement_with_large"]  # both regressed: -49.5% second
    html = render(c.new, c, None)
    assert "<b>from 0</b>" in html


def test_the_report_states_the_rule_the_verdicts_were_judged_by_and_the_runs_gate(tmp_path):
    """It said 'Mann-Whitney U on the latency samples ... non-overlapping recorded intervals', which the
    comparison does not do."""
    rng = np.random.default_rng(0)
    runs = [load_run(synthetic.write_run(tmp_path, 1.0, seed=i, started=float(i), batches=(1,),
                                         models=("mobilenet_v2",), count=150, drift=float(rng.lognormal(0, 0.02))))
            for i in range(7)]
    c = compare_runs(runs[-2], runs[-1], history=runs[:-1])
    assert c.gate.startswith("run-level test")  # history enough for the gate
    html = render(runs[-1], c, None)
    assert "Mann-Whitney" not in html and "non-overlapping" not in html
    assert "between-run noise of the same measurement in up to 20 earlier runs" in html
    assert "with fewer than 5: &#39;between-run noise unknown&#39;, never a regression" in html
    assert "moving-block bootstrap" in html and f"This comparison's {escape(c.gate)}." in html


def test_a_measurement_that_failed_in_this_run_is_in_the_reports_summary_and_comparison(tmp_path):
    base = _cascade(tmp_path / "a", 0.01, 0.99)
    failed = _cascade(tmp_path / "b", 0.01, 0.99)
    failed.records[0].status, failed.records[0].error, failed.records[0].metrics = "error", "model did not load", {}
    c = compare_runs(base, failed)
    html = render(c.new, c, None)
    assert "1 failed in this run</span>" in html
    assert "Failed in this run, measured in the baseline (the run fails against it): compression cpu" in html
    assert "model did not load" in html and "Only in the baseline" not in html
