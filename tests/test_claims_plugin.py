"""Three-valued verdicts through the plugin: a claim whose interval straddles its threshold is re-measured up to
the profile's max_rounds, then is xfailed (never a pass), and fails under --edgeai-strict; a missed claim fails;
a claim with nothing to judge skips with the reason. The suite judges given intervals, so nothing is timed."""

from __future__ import annotations

import pytest

from pytest_edgeai.claims import CLAIMS
from pytest_edgeai.measure.profiles import PROFILES

QUICK = ("--edgeai-profile", "quick", "-p", "no:cacheprovider", "-p", "no:randomly", "-rsx")
DEVICES = '[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n[devices.cpu.claims.verdicts]\nmin_score = 9.0\n'
SUITE = '''
import pytest
from pytest_edgeai import Estimate

pytestmark = pytest.mark.edgeai_suite("verdicts", claims={"min_score": "points"})
ASKED = []


def judged(edgeai_claims, first, later=None):
    def more():
        ASKED.append(1)
        return later(len(ASKED)) if later else None
    edgeai_claims.check("min_score", first, "m", more=more)
    edgeai_claims.assert_met()


def test_straddles(edgeai_claims):
    try:
        judged(edgeai_claims, Estimate(10.0, 8.0, 12.0, "stand-in", 2),
               lambda n: Estimate(10.0, 8.0 + n / 100, 12.0, "stand-in", 2 + n))
    finally:
        print(f"re-measured {len(ASKED)} times")


def test_missed(edgeai_claims):
    judged(edgeai_claims, Estimate(5.0, 4.0, 6.0, "stand-in", 3))


def test_nothing_measured(edgeai_claims):
    judged(edgeai_claims, None)
'''


@pytest.fixture
def lab(pytester: pytest.Pytester):
    before = set(CLAIMS)
    pytester.makefile(".toml", devices=DEVICES)
    pytester.makepyfile(test_verdicts=SUITE)
    yield pytester
    for name in set(CLAIMS) - before:
        del CLAIMS[name]


def test_inconclusive_is_re_measured_then_xfailed_missed_fails_and_unmeasured_skips(lab):
    result = lab.runpytest("--device", "cpu", *QUICK, "-s")
    result.assert_outcomes(xfailed=1, failed=1, skipped=1)
    rounds = PROFILES["quick"].max_rounds
    result.stdout.fnmatch_lines([f"*re-measured {rounds - 2} times"])
    result.stdout.fnmatch_lines(["*XFAIL*claim inconclusive (never a pass)*"])
    result.stdout.fnmatch_lines(["*min_score for m on cpu: expected >= 9 points, observed 10 points in [[]8.*, 12[]]"
                                 f"*straddles*(now {rounds};*"])
    result.stdout.fnmatch_lines(["*SKIPPED*claim not checkable here: min_score for m on cpu: nothing was measured*"])
    result.stdout.fnmatch_lines(["*claim not met:*", "*min_score for m on cpu: expected >= 9 points, observed 5 "
                                 "points in [[]4, 6[]] (stand-in) (44.4% short)*"])


def test_strict_fails_an_inconclusive_claim(lab):
    result = lab.runpytest("--device", "cpu", "--edgeai-strict", *QUICK, "-k", "straddles")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--edgeai-strict fails an inconclusive claim*"])
