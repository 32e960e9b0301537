"""Jetson power state read through fake nvpmodel / jetson_clocks commands on PATH."""

from __future__ import annotations

import os
import stat

import pytest

from pytest_edgeai.backends import jetson

NVPMODEL_Q = "NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n"
SHOW_PINNED = """SOC family:tegra210  Machine:NVIDIA Jetson Nano Developer Kit
Online CPUs: 0-3
cpu0: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0
cpu1: Online=1 Governor=schedutil MinFreq=1479000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=0 c7=0
GPU MinFreq=921600000 MaxFreq=921600000 CurrentFreq=921600000
EMC MinFreq=204000000 MaxFreq=1600000000 CurrentFreq=1600000000 FreqOverride=1
"""
SHOW_FREE = SHOW_PINNED.replace("cpu1: Online=1 Governor=schedutil MinFreq=1479000", "cpu1: Online=1 Governor=schedutil MinFreq=102000")


def fake_command(directory, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    return tmp_path


def test_power_mode_and_pinned_clocks(bin_dir):
    fake_command(bin_dir, "nvpmodel", f"[ \"$1\" = -q ] || exit 3\ncat <<'EOF'\n{NVPMODEL_Q}EOF")
    fake_command(bin_dir, "jetson_clocks", f"[ \"$1\" = --show ] || exit 3\ncat <<'EOF'\n{SHOW_PINNED}EOF")
    assert jetson.state() == {"nvpmodel_mode": "MAXN", "nvpmodel_id": 0, "jetson_clocks": True}


def test_clocks_not_pinned_when_one_cpu_floats(bin_dir):
    fake_command(bin_dir, "jetson_clocks", f"cat <<'EOF'\n{SHOW_FREE}EOF")
    assert jetson.clocks_pinned() == {"jetson_clocks": False}


def test_failing_and_missing_commands_are_recorded_not_guessed(bin_dir, monkeypatch):
    fake_command(bin_dir, "nvpmodel", "echo 'NVPM ERROR: failed to read' >&2\nexit 1")
    mode = jetson.power_mode()
    assert mode["nvpmodel_mode"] is None and "exited 1" in mode["nvpmodel_error"]
    monkeypatch.setenv("PATH", str(bin_dir))  # no jetson_clocks anywhere on PATH
    clocks = jetson.clocks_pinned()
    assert clocks["jetson_clocks"] is None and "not on PATH" in clocks["jetson_clocks_error"]


def test_a_hanging_command_times_out(bin_dir, monkeypatch):
    fake_command(bin_dir, "nvpmodel", "exec sleep 10")
    monkeypatch.setattr(jetson, "TIMEOUT_S", 0.2)
    assert "timed out" in jetson.power_mode()["nvpmodel_error"]
