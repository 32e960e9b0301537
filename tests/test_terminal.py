"""What the terminal shows: the live progress line (on a real pseudo-terminal), the summary, the last line."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
from conftest import MEASURE_TEST, build_tiny_model

from pytest_edgeai.measure.scenarios import Progress
from pytest_edgeai.report.terminal import LiveLine, ProgressLine

COLUMNS = 160
ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")

# a test of two measurements, each shorter than the 3 s after which the live line shows, then a short test
LONG_MEASUREMENT = """
from pytest_edgeai.measure.profiles import PROFILES
from dataclasses import replace

def test_long(edgeai_device, edgeai_model, edgeai_bench):
    for batch in (1, 2):
        edgeai_bench.offline(edgeai_model({model!r}), batch, profile=replace(PROFILES["quick"], min_duration_s=2.5))

def test_after():
    pass
"""


def screen(raw: str, width: int = COLUMNS) -> list[str]:
    """The lines a terminal of ``width`` columns shows after ``raw``: carriage returns, backspaces and
    wrapping as a terminal does them, escape sequences (colours, OSC progress) dropped."""
    lines: list[list[str]] = [[]]
    col = 0
    for ch in ESCAPE.sub("", raw):
        if ch == "\n":
            lines.append([])
            col = 0
        elif ch == "\r":
            col = 0
        elif ch == "\b":
            col = max(0, col - 1)
        elif ch >= " ":
            if col == width:
                lines.append([])
                col = 0
            line = lines[-1]
            line.extend(" " * (col - len(line) + 1)) if col >= len(line) else None
            line[col] = ch
            col += 1
    return ["".join(line).rstrip() for line in lines]


class FakeTerminal:
    """pytest's terminal as the live line sees it: a current line pytest has written, and raw writes."""

    def __init__(self, written: str, width: int = 80):
        self.raw = written
        self.pytest_line = written
        self.width = width

    def write(self, text: str) -> None:
        self.raw += text

    def line(self, clock: list[float] | None = None) -> LiveLine:
        """The live line on this terminal; ``clock``: the times it reads, one per read (the last repeats)."""
        times = clock or [100.0]
        return LiveLine(self.write, room=lambda: self.width - len(self.pytest_line) - 1,
                        column=lambda: len(self.pytest_line), delay=3.0,
                        clock=lambda: times.pop(0) if len(times) > 1 else times[0])


def progress(elapsed: float, rate: float = 1234.5) -> Progress:
    return Progress(elapsed, 60.0, int(elapsed * 10), 100, rate)


def test_the_live_line_rewrites_itself_and_is_cleared_leaving_pytests_line_as_it_was():
    term = FakeTerminal("test_x.py ..", width=COLUMNS)
    # the first progress at 10 s (read twice), the next at 11 s, then 13 s and later
    show = ProgressLine(term.line(clock=[10.0, 10.0, 11.0, 13.0]), "cpu tiny offline b8")
    show(progress(1.0))
    show(progress(2.0))
    assert term.raw == "test_x.py .."  # for the first 3 s of a test's progress: nothing
    show(progress(12.0, rate=99999.9))
    show(progress(13.0, rate=5.0))  # shorter than the text before: its tail is blanked
    assert screen(term.raw) == ["test_x.py .. [edgeai] cpu tiny offline b8: 13/60 s, 130/100 queries, "
                                "5.0 inferences/s"]
    show.line.clear()
    assert screen(term.raw) == ["test_x.py .."]
    term.raw += "."  # pytest goes on where it left off
    assert screen(term.raw) == ["test_x.py ..."]
    show.line.clock = lambda: 20.0  # the next test: its own 3 s of quiet first
    show(progress(1.0))
    assert screen(term.raw) == ["test_x.py ..."]


def test_the_live_line_never_wraps_and_leaves_text_alone_once_pytest_has_written():
    term = FakeTerminal("x" * 40, width=80)
    line = term.line(clock=[0.0, 0.0, 5.0])
    line.show("quiet: the first progress")
    line.show("y" * 100)
    assert screen(term.raw, 80) == ["x" * 40 + "y" * 39]  # within the line, the last column kept free
    term.pytest_line += "PASSED"  # pytest (or a live log) wrote since: the cursor is not after our text
    term.raw += "PASSED"
    line.clear()
    assert term.raw.endswith("PASSED")
    term.pytest_line = "z" * 70  # too little room left to say anything
    line.show("progress")
    assert term.raw.endswith("PASSED")


def run_in_terminal(args: list[str], cwd: str, timeout: float = 180) -> str:
    """Run pytest on a pseudo-terminal of COLUMNS columns, as a person at a terminal does; its output."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    env = {**os.environ, "COLUMNS": str(COLUMNS), "TERM": "xterm", "PY_COLORS": "0"}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env, stdin=follower,
                            stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait(30)
        os.close(leader)
    return out.decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.fixture
def long_measurement(pytester: pytest.Pytester) -> pytest.Pytester:
    build_tiny_model(pytester.path / "tiny.onnx")
    pytester.makepyfile(test_long=LONG_MEASUREMENT.format(model=str(pytester.path / "tiny.onnx")))
    return pytester


def test_a_long_measurement_shows_a_live_line_on_a_terminal_without_s_and_pytests_column_stays(long_measurement):
    raw = run_in_terminal(["--edgeai-profile", "quick", "--edgeai-no-canary", "-p", "no:cacheprovider",
                           "test_long.py"], str(long_measurement.path))
    assert "[edgeai] cpu tiny offline b2: " in raw and " inferences/s" in raw, raw  # shown, capture or not
    shown = screen(raw)
    [row] = [line for line in shown if line.startswith("test_long.py")]
    assert re.fullmatch(r"test_long\.py \.\. +\[100%\]", row), row  # cleared: nothing of it is left
    assert len(row) == COLUMNS - 1, row  # [100%] ends where pytest puts it on a 160-column terminal
    assert not any("[edgeai] cpu tiny" in line for line in shown)
    last, before = [line for line in ESCAPE.sub("", raw).splitlines() if line.strip()][-1:-3:-1]
    assert last.startswith("edgeai: 2 records in ") and "2 passed" in before


def test_xdist_workers_write_no_live_line_even_when_the_controller_is_on_a_terminal(long_measurement):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    raw = run_in_terminal(["--edgeai-profile", "quick", "--edgeai-no-canary", "-p", "no:cacheprovider", "-n", "1",
                           "test_long.py"], str(long_measurement.path))
    assert "2 passed" in raw, raw
    assert "[edgeai] cpu tiny" not in raw and "\b" not in raw


def test_without_a_terminal_there_is_no_live_line(long_measurement):
    result = long_measurement.runpytest_subprocess("--edgeai-profile", "quick", "--edgeai-no-canary",
                                                   "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "[edgeai] cpu tiny" not in out and "\b" not in out
    result.stdout.fnmatch_lines(["test_long.py .. *[[]100%[]]"])


DEVICES = """
[devices.cpu]
kind = "cpu"
backend = "onnxruntime"
[devices.cpu.claims.throughput]
min_inferences_per_s = 1.0
"""

A_SUITE = "import pytest\n" + MEASURE_TEST + """
@pytest.mark.parametrize("meter", ["a", "b"])
def test_energy(edgeai_device, meter):
    pytest.skip("no RAPL counters readable here")

def test_fails(edgeai_device):
    assert False
"""

EVERYTHING_SKIPS = """
import pytest

def test_measure(edgeai_device, edgeai_bench):
    pytest.skip("nothing to measure today")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    build_tiny_model(pytester.path / "tiny.onnx")
    pytester.makefile(".toml", devices=DEVICES)
    pytester.makepyfile(test_throughput=A_SUITE.format(model=str(pytester.path / "tiny.onnx")))
    return pytester


def test_the_summary_says_what_each_test_measured_and_why_tests_skipped_and_ends_with_the_run(suite):
    result = suite.runpytest("--edgeai-profile", "quick", "--edgeai-no-canary", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2, failed=1)
    run = (suite.path / "reports" / "latest").resolve()
    out = result.stdout.lines
    assert out[-1] == f"edgeai: 1 records in {run}; HTML report: {run / 'report.html'}"  # after pytest's own
    assert "short test summary info" in "".join(out[:-1]) and "1 failed, 1 passed, 2 skipped" in out[-2]
    result.stdout.fnmatch_lines(["*edgeai summary*",
                                 "test*suite*device*model*scenario*batch*inf/s*p50 ms*p90 ms*claims*",
                                 "test_measure*throughput*cpu*tiny*offline*2*min_inferences_per_s:met[[]*,*[]]",
                                 "*edgeai skipped*",
                                 "   2 x no RAPL counters readable here"])  # without -rs, grouped


def test_a_run_that_measured_nothing_says_latest_still_names_the_last_run_that_did(suite):
    args = ("--edgeai-profile", "quick", "--edgeai-no-canary", "-p", "no:cacheprovider")
    suite.runpytest(*args, "-k", "test_measure").assert_outcomes(passed=1)
    measured = (suite.path / "reports" / "latest").resolve()
    suite.makepyfile(test_throughput=EVERYTHING_SKIPS)
    result = suite.runpytest(*args)
    result.assert_outcomes(skipped=1)
    assert (suite.path / "reports" / "latest").resolve() == measured
    assert result.stdout.lines[-1].startswith("edgeai: 0 records in ")
    assert f"(nothing was measured: {suite.path / 'reports' / 'latest'} still names {measured})" \
        in result.stdout.lines[-1]
    result.stdout.fnmatch_lines(["*edgeai skipped*", "   1 x nothing to measure today"])


def test_every_test_gets_a_row_saying_what_it_measured_and_an_estimate_says_so():
    from pytest_edgeai.report.terminal import summary_rows
    from pytest_edgeai.results.record import Record, metric

    def record(test: str, scenario: dict, **metrics: dict) -> Record:
        return Record(suite="mine", test_id=f"suites/test_mine.py::{test}[cpu-m]", device={"name": "cpu"},
                      backend={"name": "onnxruntime"}, model={"name": "m"}, scenario=scenario,
                      metrics=dict(metrics))

    one_round = record("test_rounds", {"name": "offline", "batch": 1, "round": 0},
                       throughput_ips=metric(50.0, "inferences/s", "t"))
    pooled_without_figures = record("test_rounds", {"name": "energy_rounds", "batch": 1})
    study = record("test_study", {"name": "study"}, saving=metric(10.65, "ratio", "t"),
                   joules=metric(0.5, "J", "t", method="estimated"))
    rows = summary_rows([one_round, pooled_without_figures, study])
    assert [row[0] for row in rows] == ["test_rounds", "test_study"]
    assert rows[0][6] == "50.0"  # the round's figure stands in for a pooled record that has none
    assert rows[1][-1] == "measured: saving=10.65 ratio, joules=0.5 J (estimated)"
