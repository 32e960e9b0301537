"""The HTML report: one self-contained file, escaped, sections present only when they have records."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np

from pytest_edgeai.report.html import render, write_report
from pytest_edgeai.results import synthetic
from pytest_edgeai.results.compare import DIAGNOSTIC_REGRESSED, compare_runs
from pytest_edgeai.results.history import build_history
from pytest_edgeai.results.record import Record
from pytest_edgeai.results.store import RunStore, load_run

EVIL = "<img src=x onerror=alert(1)>"
ONE = dict(batches=(1, 2, 4), count=80, models=("mobilenet_v2",))


def _external_refs(html: str) -> list[str]:
    """Attributes (src, href, xlink:href, action, ...) that would make the browser fetch something."""
    found: list[str] = []

    class Refs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend(v for k, v in attrs if v and k in ("src", "href", "xlink:href", "action", "data",
                                                               "poster", "srcset")
                         and not v.startswith(("#", "data:")))

    Refs().feed(html)
    return found


def _run(root, *records: Record, meta=None):
    store = RunStore.create(root, {"environment": {"host": EVIL}, "options": {}, **(meta or {})})
    for r in records:
        store.write(r)
    store.finish()
    return store.path


def test_a_hostile_device_name_renders_as_text_in_tables_and_charts(tmp_path):
    dev = synthetic.device(EVIL)
    for i in range(5):  # earlier runs: the between-run noise the comparison judges on
        synthetic.write_run(tmp_path, 1.0, seed=10 + i, dev=dev, started=float(i), **ONE)
    base = synthetic.write_run(tmp_path, 1.0, seed=1, dev=dev, **ONE)
    new = synthetic.write_run(tmp_path, 1.3, seed=2, dev=dev, **ONE)
    html = write_report(new, baseline=base).read_text()
    assert EVIL not in html  # nowhere unescaped, not even inside the SVG text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<svg") >= 2 and "<script" not in html
    assert _external_refs(html) == []
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # regressions come first, before the per-suite sections
    assert html.index("Regressions against the baseline") < html.index("<h2>Throughput and latency")


def test_sections_without_records_are_left_out_and_present_ones_render(tmp_path):
    rng = np.random.default_rng(0)
    energy = Record(suite="energy", test_id="t", device=synthetic.device(), backend={}, model={"name": "m"},
                    scenario={"name": "energy"},
                    metrics={"joules_per_inference": {"value": 0.02, "unit": "J", "method": "estimated",
                                                      "source": "TDP x time"}})
    sweep = Record(suite="concurrency", test_id="t", device=synthetic.device(), backend={}, model={"name": "m"},
                   scenario={"name": "tenants"},
                   extra={"sweep": [{"tenants": n, "aggregate_ips": 100.0 * n ** 0.5, "p99_ms": 5.0 * n}
                                    for n in (1, 2, 4)]})
    cut = Record(suite="split", test_id="t", device=synthetic.device(), backend={}, model={"name": "m"},
                 scenario={"name": "cuts"},
                 extra={"cuts": [{"depth_layers": i, "bytes": {"raw": 1000 - 100 * i, "int8": 250 - 25 * i},
                                  "tensors": ["a", "b"]} for i in range(4)], "plan": {"cut": 3, "tier": EVIL}})
    single = synthetic.latency_record("m", "single_stream", 1, 3.0, rng, 50)
    html = render(load_run(_run(tmp_path, energy, sweep, cut, single)))
    assert "Energy" in html and "(estimated)" in html and "TDP x time" in html
    assert "Concurrency" in html and "aggregate_ips against tenants" in html
    assert ("Split: bytes per cut" in html
            and "cpu m: bytes sent per input at each cut (encoding+codec) against depth_layers" in html
            and "bytes.<wbr>int8" in html and "[2 items]" in html)
    assert "Compression trade-offs" not in html and "Comparison with the baseline" not in html
    assert EVIL not in html and "&lt;img" in html


def test_unreadable_records_are_listed_and_the_rest_shown(tmp_path):
    path = synthetic.write_run(tmp_path, 1.0, seed=1, **ONE)
    files = sorted((path / "records").glob("*.json"))
    files[0].write_text('{"schema": "pytest-edgeai/result", "schema_vers')
    html = render(load_run(path))
    assert "could not be read" in html and files[0].name in html
    assert html.count("<tr><td class=\"l\">cpu</td>") >= len(files) - 1


def test_a_metric_whose_unit_is_not_text_still_renders(tmp_path):
    # a record edited by hand or by another tool: the fuzz test found "unit": true crashing the energy section
    path = synthetic.write_run(tmp_path, 1.0, seed=1, **ONE)
    first = sorted((path / "records").glob("*.json"))[0]
    data = json.loads(first.read_text())
    name = next(iter(data["metrics"]))
    data["metrics"][name]["unit"] = True
    data["metrics"]["joules_per_inference"] = {"value": 0.02, "unit": ["J"], "method": "estimated"}
    first.write_text(json.dumps(data))
    html = render(load_run(path))
    assert name in html and "joules_per_inference" in html


def test_comparison_and_trend_are_coloured_by_verdict(tmp_path):
    runs = [synthetic.write_run(tmp_path, 1.3 if i >= 6 else 1.0, seed=i, started=float(i),
                                release=f"v{i // 2}", **ONE) for i in range(12)]
    loaded = [load_run(p) for p in runs]
    html = render(loaded[-1], compare_runs(loaded[0], loaded[-1]), build_history(loaded))
    assert 'class="regressed"' in html and "Trend across runs" in html
    assert "entered at release v3" in html  # the first slow run is release v3
    assert html.count("<svg") >= 3


def test_energy_section_takes_energy_metrics_only():
    from pytest_edgeai.report.sections import is_energy

    for name, unit in (("joules_per_inference", "J"), ("mj_per_query", "mJ"), ("mean_w", "W"),
                       ("inferences_per_s_per_w", "inferences/s/W"), ("inferences_per_s_per_usd", "inferences/s/USD")):
        assert is_energy(name, unit), name
    for name, unit in (("agreement_with_large", "fraction"), ("throughput_ips", "inferences/s"),
                       ("latency_p90_ms", "ms"), ("wire_bytes", "bytes")):
        assert not is_energy(name, unit), name


def test_a_diagnostic_regression_is_not_coloured_as_a_regression(tmp_path):
    runs = [load_run(synthetic.write_run(tmp_path, 1.0, seed=i, started=float(i), **ONE)) for i in range(2)]
    comparison = compare_runs(runs[0], runs[1])
    comparison.deltas = [replace(comparison.deltas[0], metric="latency_stddev_ms", verdict=DIAGNOSTIC_REGRESSED)]
    html = render(runs[1], comparison, None)
    assert '<tr class="diagnostic">' in html and '<tr class="regressed">' not in html  # reported, not red
    assert f">{DIAGNOSTIC_REGRESSED}</td>" in html


def _record(suite, model, scenario, metrics=None, **extra):
    return Record(suite=suite, test_id=f"suites/test_{suite}.py::t[cpu-{model}]", device=synthetic.device(),
                  backend={}, model={"name": model}, scenario=scenario,
                  metrics={k: {"value": v, "unit": u, "method": "measured", "source": "test"}
                           for k, (v, u) in (metrics or {}).items()}, extra=extra)


def _svg_titles(html: str) -> list[str]:
    """The titles of the charts (matplotlib writes the suptitle as the figure's first text)."""
    import re

    return re.findall(r'<g id="text_\d+">\s*<text[^>]*>([^<]*)</text>', html)


def test_records_of_other_suites_never_join_the_throughput_batch_curve(tmp_path, monkeypatch):
    from pytest_edgeai.report import sections

    drawn = []
    monkeypatch.setattr(sections.charts, "line_chart",
                        lambda title, x, y, lines, **kw: drawn.append((title, lines)) or "")
    rng = np.random.default_rng(0)
    throughput = [synthetic.latency_record("mobilenet_v2", "offline", b, 5.0 * b ** 0.5, rng, 40) for b in (1, 2, 4)]
    others = [synthetic.latency_record("mobilenet_v2", "offline", 1, 50.0, rng, 40, suite=s)
              for s in ("energy", "compression")]
    render(load_run(_run(tmp_path, *throughput, *others)))
    [(title, lines)] = [d for d in drawn if "offline throughput against batch" in d[0]]
    assert "(throughput suite)" in title
    assert [(name, list(xs)) for name, xs, _ in lines] == [("mobilenet_v2", [1, 2, 4])]  # not five points at b1
    assert min(lines[0][2]) > 100  # the throughput suite: ~200/s at b1; the other suites ran 50 ms (20/s)


def test_the_split_chart_has_distinct_series_its_baselines_and_the_chosen_plan_in_view(tmp_path):
    codecs = [f"{e}+{c}" for e in ("raw", "fp16", "int8") for c in ("none", "lz4", "zlib", "zstd")]  # 12 series
    cuts = [{"cut": f"{i}:layer_{i}", "depth_layers": i,
             "bytes": {k: 1000.0 * (j + 1) / (i + 1) for j, k in enumerate(codecs)}}
            for i in range(5)]
    cut = _record("split", "mobilenet_v2", {"name": "split_bytes_per_cut"},
                  {"best_cut_saving": (7.0, "x"), "input_compressed_bytes": (900.0, "bytes"),
                   "input_jpeg_bytes": (300.0, "bytes")}, cuts=cuts, best_cut="3:layer_3")
    plan = _record("split", "mobilenet_v2", {"name": "split_plan"}, {"measured_latency_ms": (70.0, "ms")},
                   plans=[{"objective": "latency", "summary": "device[0:3] -> cloud[3:5] (latency 0.07)"}])
    html = render(load_run(_run(tmp_path, cut, plan)))
    import re

    styles = set(re.findall(r'stroke-dasharray: ([^;"]*);[^"]*stroke: (#[0-9a-f]{6})', html)) | {
        ("solid", c)
        for c in re.findall(r'style="fill: none; stroke: (#[0-9a-f]{6}); stroke-width: 1\.5; stroke-linecap', html)}
    assert len({c for _, c in styles}) >= 10 and len(styles) >= 12, styles  # 12 codecs: no two alike
    assert "input as PNG (lossless)" in html and "input as JPEG q90" in html
    assert "best cut 3:layer_3" in html
    chosen = html.index("device[0:3] -&gt; cloud[3:5]")
    assert "Chosen plan" in html[chosen - 200:chosen]
    assert html.rfind("<details", 0, chosen) <= html.rfind("</details>", 0, chosen)  # not folded away


def test_configuration_is_not_charted_as_a_measurement_and_loadgen_keeps_its_lines(tmp_path):
    sweep = [{"tenants": n, "aggregate_ips": 100.0 * n, "threads": {"cores": 2}, "window_s": 2.0,
              "fairness": {"jain": 1.0 - 0.01 * n}} for n in (1, 2, 4)]
    tenants = _record("concurrency", "mobilenet_v2", {"name": "tenant_sweep", "mode": "thread"}, sweep=sweep)
    summary = "MLPerf Results Summary\nScenario : Offline\nSamples per second: 131.1\nResult is : VALID\n"
    loadgen = _record("concurrency", "mobilenet_v2", {"name": "loadgen_Offline"},
                      {"throughput_ips": (131.1, "inferences/s")}, loadgen={"scenario": "Offline", "summary": summary})
    html = render(load_run(_run(tmp_path, tenants, loadgen)))
    titles = _svg_titles(html)
    assert any("aggregate_ips against tenants" in t for t in titles), titles
    assert not any("threads.cores" in t or "window_s" in t for t in titles), titles
    assert "<pre>MLPerf Results Summary\nScenario : Offline\n" in html


def test_cascade_series_are_named_by_the_link_that_differs(tmp_path):
    rows = [{"threshold": t, "latency_reduction": 3.0 * t, "accuracy_loss": 0.01 * t} for t in (0.5, 0.8, 1.0)]
    cascades = [_record("compression", "digits_small_uniform", {"name": "cascade", "link": link, "threshold": 0.8},
                        sweep=rows) for link in ("device_edge", "device_cloud")]
    html = render(load_run(_run(tmp_path, *cascades)))
    title = html.index("latency_reduction against threshold")
    chart = html[html.rfind("<svg", 0, title):html.index("</svg>", title)]
    assert "link=device_edge" in chart and "link=device_cloud" in chart
    assert chart.count("digits_small_uniform") == 1  # said once, in the title, not in both legend entries


def test_the_trend_axis_names_runs_and_leaves_other_profiles_out(tmp_path):
    paths = [synthetic.write_run(tmp_path, 1.0, seed=i, started=1_700_000_000.0 + 3600 * i, **ONE) for i in range(4)]
    other = RunStore.create(tmp_path, {"environment": {}, "options": {}, "profile": {"name": "quick"}})
    other.write(synthetic.latency_record("mobilenet_v2", "single_stream", 1, 99.0, np.random.default_rng(9), 40))
    other.finish()
    report = write_report(paths[-1], history=[*paths[:-1], other.path])
    html = report.read_text()
    ids = [load_run(p).meta["run_id"] for p in paths]
    assert "4 runs of profile <b>synthetic</b>" in html
    assert all(i in html[html.index("Trend across runs</h2>"):] for i in ids)
    assert other.run_id not in html[html.index("Trend across runs</h2>"):]
