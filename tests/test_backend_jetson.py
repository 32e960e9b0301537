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
SHOW_FREE = SHOW_PINNED.replace("cpu1: Online=1 Governor=schedutil MinFreq=1479000",
                                "cpu1: Online=1 Governor=schedutil MinFreq=102000")


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


def fake_board(root, model: str,
               release: str | None = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic"):
    """/proc/device-tree/model (NUL-terminated, as the kernel exposes it) and /etc/nv_tegra_release
    (Jetson Linux Developer Guide, "Identifying the release")."""
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    if release:
        (root / "etc").mkdir()
        (root / "etc/nv_tegra_release").write_text(release + "\n")
    return root


def test_the_board_and_its_release_are_identified(tmp_path):
    root = fake_board(tmp_path, "NVIDIA Jetson Orin Nano Developer Kit")
    found = jetson.board(root)
    assert found == {"board": "NVIDIA Jetson Orin Nano Developer Kit", "l4t": "36.4.3"}
    assert jetson.board_problem(found, "") is None and jetson.board_problem(found, "orin nano") is None


def test_another_board_than_the_configured_one_is_refused_in_one_line(tmp_path):
    found = jetson.board(fake_board(tmp_path, "NVIDIA Jetson AGX Orin Developer Kit"))
    assert jetson.board_problem(found, "Orin Nano") == (
        "this board is 'NVIDIA Jetson AGX Orin Developer Kit', not the configured 'Orin Nano' (options.board): "
        "run it on that board")


@pytest.mark.parametrize("model, release, why", [
    ("NVIDIA Jetson Nano Developer Kit", "# R32 (release), REVISION: 7.1", "last JetPack is 4.6 (L4T R32, Python 3.6"),
    ("NVIDIA Jetson Xavier NX Developer Kit", "# R35 (release), REVISION: 4.1",
     "last JetPack is 5.1 (L4T R35, Python 3.8"),
    ("NVIDIA Jetson AGX Orin Developer Kit", "# R35 (release), REVISION: 4.1", "runs L4T R35.4.1 (JetPack 5 or older"),
    ("QEMU Virtual Machine", None, "not a Jetson: /proc/device-tree/model is 'QEMU Virtual Machine'"),
])
def test_unsupported_boards_and_releases_say_why_and_what_is_supported(tmp_path, model, release, why):
    problem = jetson.board_problem(jetson.board(fake_board(tmp_path, model, release)), "")
    assert why in problem and "supported: Orin" in problem
    assert jetson.board_problem(jetson.board(tmp_path / "none"), "") .startswith("not a Jetson: no /proc/device-tree")
