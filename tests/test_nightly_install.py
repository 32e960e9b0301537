"""The nightly jobs install from the package's own extras, and the CI check resolves each job's install,
so a pin that cannot be installed (for that job's Python and platform) fails before a runner meets it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("nightly_install", ROOT / ".ci" / "nightly_install.py")
nightly = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nightly)


def test_extras_expand_to_plain_requirements_with_self_references_resolved():
    project = {"name": "pytest-edgeai", "dependencies": ["numpy>=1.24"],
               "optional-dependencies": {"a": ["x>=1"], "b": ["pytest-edgeai[a]", "y<2"], "c": ["pytest-edgeai[b,a]"]}}
    assert sorted(nightly.requirements("c", project)) == ["numpy>=1.24", "x>=1", "y<2"]
    with pytest.raises(SystemExit, match=r"extra \[nope\] is not in pyproject.toml"):
        nightly.requirements("nope", project)


def test_every_job_names_extras_the_package_has_and_the_workflow_runs_doctor_first():
    for job in json.loads((ROOT / ".github/nightly-jobs.json").read_text()):
        assert nightly.requirements(job["extras"])  # raises for an extra pyproject.toml lacks
    workflow = (ROOT / ".github/workflows/nightly.yml").read_text()
    assert ("fromJSON(needs.plan.outputs.jobs)" in workflow
            and ".ci/nightly_install.py ${{ matrix.accelerator }}" in workflow)
    assert workflow.index("pytest-edgeai doctor") < workflow.index("pytest suites")


def test_a_pin_that_cannot_be_installed_fails_the_check(monkeypatch):
    job = {"accelerator": "broken", "python": "3.11", "extras": "x"}
    monkeypatch.setattr(nightly, "requirements", lambda extras: ["openvino==1999.0"])
    accelerator, why = nightly.check_one(job)
    if why and ("Could not fetch" in why or "connection" in why.lower()):
        pytest.skip(f"the package index is not reachable from here: {why}")
    assert accelerator == "broken" and "No matching distribution found for openvino==1999.0" in why
