"""A kernel-shaped link for real: namespaces, veth, tbf (and netem where the kernel has it).

These run where the process may create network namespaces (root or CAP_NET_ADMIN, iproute2
installed: CI runs as root) and skip with the reason elsewhere. Traffic goes only between the
namespaces the test creates. Bounds are deliberately wide (a shared 2-core machine): the
kernel enforces the rate's upper bound; the lower bounds only catch a link that is not shaped
or not delivering.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tomllib
from test_split_execute import two_input_feeds, two_input_model, whole

from pytest_edgeai import config
from pytest_edgeai.errors import ConfigError, MeasurementError, SplitExecutionError
from pytest_edgeai.split import netns
from pytest_edgeai.split.cuts import GraphCuts
from pytest_edgeai.split.execute import SplitExecutor, StageSpec
from pytest_edgeai.split.network import LinkProfile

WHY = netns.unavailable()
kernel = pytest.mark.skipif(WHY is not None, reason=f"kernel-shaped links: {WHY}")

RATE_TOLERANCE = (0.80, 1.02)  # measured goodput / the hop's modelled goodput (the rate less segment headers)


@kernel
def test_a_known_rate_is_reproduced_through_tcp_within_the_stated_tolerance():
    rate_mbps = 20.0
    with netns.Lab([LinkProfile("device", "edge", rate_mbps, 0.0)]) as lab:
        assert "tbf" in lab.qdiscs()[lab.names[0]] and "rate 20Mbit" in lab.qdiscs()[lab.names[0]]
        seconds, n = netns.measure_goodput(lab, 750_000)  # 0.3 s at 20 Mbit/s
        modelled = lab.hops[0].link
    assert n == 750_000
    assert modelled.goodput_bytes_per_s < modelled.rate_bytes_per_s  # the segments' headers are priced
    ratio = n / seconds / modelled.goodput_bytes_per_s
    assert RATE_TOLERANCE[0] <= ratio <= RATE_TOLERANCE[1], f"goodput {ratio:.3f} x the modelled goodput"


@kernel
def test_the_segment_headers_are_read_from_the_hop_not_assumed():
    with netns.Lab([LinkProfile("device", "edge", 20.0, 0.0)]) as lab:
        hop = lab.hops[0]
        payload, frame, how = netns.segment_sizes(hop.sender_ns, hop.receiver_ns, hop.address)
        assert (hop.link.segment_payload_bytes, hop.link.segment_header_bytes) == (payload, frame - payload)
        assert hop.shaping.headers.startswith("modelled:") and f"TCP_MAXSEG {payload}" in how
        for ns, dev in ((hop.sender_ns, netns.DOWN), (hop.receiver_ns, netns.UP)):
            subprocess.run(["ip", "-n", ns, "link", "set", "dev", dev, "mtu", "1000"], check=True)
        small = netns.segment_sizes(hop.sender_ns, hop.receiver_ns, hop.address)
        for ns in (hop.sender_ns, hop.receiver_ns):  # no timestamps: 12 bytes more payload per segment
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_timestamps=0"], check=True)
        bare = netns.segment_sizes(hop.sender_ns, hop.receiver_ns, hop.address)
    assert frame == 1514 and small[1] == bare[1] == 1014  # the MTU plus the 14-byte Ethernet header
    assert small[0] == payload - 500 and bare[0] == small[0] + 12  # TCP's options as negotiated, read back


@kernel
def test_a_known_delay_is_added_by_whatever_adds_it():
    model = two_input_model()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 1), StageSpec("cloud", 1, 4)]
    link = LinkProfile("device", "cloud", 100.0, rtt_ms=120.0)  # 60 ms one way
    fs = two_input_feeds(3)
    with SplitExecutor(graph, stages, [link], timeout_s=20, network="kernel") as ex:
        result = ex.measure(fs, warmup=1, reference=whole(model, fs))
        names = list(ex.lab.names)
    shaping = result.shaping[0]
    assert shaping["rate"] == "kernel tbf"
    assert shaping["delay"] == "kernel netem" or shaping["delay"].startswith("user-space relay")
    assert result.max_abs_error == 0.0
    assert min(result.latencies_s) >= 0.060  # the delay is really in the path
    assert result.median_s < 0.060 + 1.0  # and it is that delay, not a stall
    assert not set(names) & set(netns.namespaces())


@kernel
def test_a_lossy_link_is_slower_by_what_tcp_does_where_netem_exists():
    clean = LinkProfile("device", "edge", 20.0, rtt_ms=20.0)
    lossy = LinkProfile("device", "edge", 20.0, rtt_ms=20.0, loss=0.01)
    with netns.Lab([lossy]) as lab:
        if not lab.netem:
            pytest.skip("this kernel lacks netem (tc: 'Specified qdisc kind is unknown'), so TCP loss "
                        "cannot be kernel-shaped here; the record says loss is modelled as lost goodput")
        assert lab.hops[0].shaping.loss == "kernel netem"
        lossy_s, _ = netns.measure_goodput(lab, 1_000_000)
    with netns.Lab([clean]) as lab:
        clean_s, _ = netns.measure_goodput(lab, 1_000_000)
    # a token bucket at goodput x (1 - loss) predicts 1.0101 x; TCP's congestion control does far worse
    assert lossy_s / clean_s > 1.2


@kernel
def test_without_netem_the_record_says_loss_is_only_modelled():
    with netns.Lab([LinkProfile("device", "edge", 10.0, 10.0, loss=0.02)], netem=False) as lab:
        shaping = lab.hops[0].shaping
        assert shaping.rate.startswith("kernel tbf") and shaping.rate_bits_per_s == pytest.approx(9.8e6)
        assert "predictor's own model" in shaping.loss and shaping.delay.startswith("user-space relay")
        assert shaping.to_dict()["kernel_shaped"] == ["rate"]


@kernel
def test_a_profile_the_kernel_cannot_shape_is_one_line_and_leaves_nothing():
    before = set(netns.namespaces())
    with pytest.raises(ConfigError, match=r"^link slow: 1000 bit/s is below the 8000 bit/s") as err:
        netns.Lab([LinkProfile("device", "edge", 0.001, 0.0, name="slow")])
    assert "\n" not in str(err.value)
    assert set(netns.namespaces()) == before


def test_a_negative_delay_is_one_line_before_anything_is_built():
    before = set(netns.namespaces())
    with pytest.raises(ConfigError, match=r"^link back: rtt_ms is -10.0; it must be a finite number >= 0$"):
        LinkProfile("device", "edge", 10.0, -10.0, name="back")
    with pytest.raises(ConfigError,
                       match=r"^devices.toml: links.l.rtt_ms: -10 is not a finite number >= 0; allowed: a number >= 0"):
        config.parse(tomllib.loads('[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n[links.l]\nfrom = "device"\n'
                                   'to = "cloud"\nbandwidth_mbps = 10\nrtt_ms = -10\n'))
    assert set(netns.namespaces()) == before


@kernel
def test_namespaces_of_a_sigkilled_run_are_removed():
    code = ("import sys, time\n"
            "from pytest_edgeai.split import netns\n"
            "from pytest_edgeai.split.network import LinkProfile\n"
            "lab = netns.Lab([LinkProfile('device', 'edge', 10.0, 10.0), LinkProfile('edge', 'cloud', 10.0, 0)])\n"
            "print(' '.join(lab.names), flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    names = proc.stdout.readline().split()
    assert len(names) == 3 and set(names) <= set(netns.namespaces())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 10
    while set(names) & set(netns.namespaces()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(names) & set(netns.namespaces())  # the reaper removed them (veths and qdiscs with them)
    root = subprocess.run(["ip", "link", "show"], capture_output=True, text=True, check=True).stdout
    qdiscs = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True, check=True).stdout
    assert netns.UP not in root and netns.DOWN not in root and netns.DOWN not in qdiscs  # nothing leaked out


@kernel
def test_a_new_lab_reclaims_the_namespaces_of_a_dead_run():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    leftover = f"{netns.PREFIX}-{dead}-beef-0"
    subprocess.run(["ip", "netns", "add", leftover], check=True)
    with netns.Lab([LinkProfile("device", "edge", 10.0, 0.0)]) as lab:
        assert leftover in lab.reclaimed
        assert leftover not in netns.namespaces()


@kernel
def test_a_stage_that_dies_mid_transfer_keeps_samples_and_leaves_no_namespace():
    model = two_input_model()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 1), StageSpec("edge", 1, 3), StageSpec("cloud", 3, 4)]
    links = [LinkProfile("device", "edge", 2.0, 0.0), LinkProfile("edge", "cloud", 2.0, 0.0)]  # 32 kB: ~0.13 s
    fs = two_input_feeds(2)
    with SplitExecutor(graph, stages, links, timeout_s=20, network="kernel") as ex:
        names = list(ex.lab.names)
        ex.measure(fs[:1], warmup=0)
        killer = threading.Timer(0.05, ex.processes[0].kill)
        killer.start()
        with pytest.raises(SplitExecutionError, match="stage '(edge|cloud)'") as err:
            ex.measure(fs * 10, warmup=0)
        killer.join()
    assert len(err.value.partial) >= 1
    assert not set(names) & set(netns.namespaces())


@kernel
def test_a_bounded_load_generator_runs_in_the_tiers_namespace_and_stops_by_itself():
    model = two_input_model()
    graph = GraphCuts(model)
    stages = [StageSpec("device", 0, 1), StageSpec("edge", 1, 4)]
    cpu = max(os.sched_getaffinity(0))
    with SplitExecutor(graph, stages, [LinkProfile("device", "edge", 100.0, 0.0)], timeout_s=20,
                       network="kernel", cpus={"edge": [cpu]}) as ex:
        ex.load("edge", duty=0.5, seconds=0.5)
        gen = ex.helpers[-1]
        gen.join(5)
        assert gen.exitcode == 0  # it ended at its bound, nobody killed it
        assert np.isfinite(ex.measure(two_input_feeds(1), warmup=0).median_s)


@kernel
def test_asking_for_netem_where_the_kernel_lacks_it_is_one_line_and_leaves_nothing():
    before = set(netns.namespaces())
    try:
        with netns.Lab([LinkProfile("device", "edge", 10.0, 20.0, loss=0.01)], netem=True) as lab:
            assert lab.hops[0].shaping.loss == "kernel netem"  # this kernel has netem: it was applied
            assert "netem" in lab.qdiscs()[lab.names[0]]
    except MeasurementError as exc:
        assert "Specified qdisc kind is unknown" in str(exc) and "\n" not in str(exc).strip()
    assert set(netns.namespaces()) == before


def test_where_the_kernel_link_cannot_be_built_the_reason_is_one_line(monkeypatch):
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "tc" else "/usr/sbin/ip")
    assert netns.unavailable.__wrapped__() == ("the 'tc' command (iproute2) is not installed: "
                                               "apt-get install iproute2")
    monkeypatch.setattr(netns.shutil, "which", lambda tool: "/usr/sbin/" + tool)
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "needs root or CAP_NET_ADMIN" in netns.unavailable.__wrapped__()


@kernel
def test_the_netem_commands_are_ones_tc_accepts_whether_or_not_the_kernel_has_netem():
    # tc parses netem's options itself (tc-netem(8)) before asking the kernel: an option it does not
    # know is refused by tc, exit 1 ('Illegal ...'); a kernel without netem refuses a well-formed
    # command with exit 2, "Specified qdisc kind is unknown". So the exact commands a netem link
    # would run are checked here even on a kernel that cannot run them.
    link = LinkProfile("device", "edge", 10.0, 40.0, loss=0.01, jitter_ms=3.0)
    with netns.Lab([LinkProfile("device", "edge", 10.0, 0.0)], netem=False) as lab:
        commands = netns.netem_commands(lab.names[0], lab.names[1], link)
        assert [c[c.index("netem") + 1:c.index("netem") + 6] for c in commands][0] == (
            "delay", "20.000ms", "3.000ms", "distribution", "normal")
        assert "loss" in commands[0] and "loss" not in commands[1]  # loss on the data direction only
        for command in commands:
            subprocess.run(["tc", *command[1:3], "qdisc", "del", "dev", command[6], "root"],
                           capture_output=True, text=True)  # the lab's tbf goes: netem would be the root
            done = subprocess.run(command, capture_output=True, text=True)
            assert done.returncode in (0, 2), done.stderr
            if done.returncode:
                assert "Specified qdisc kind is unknown" in done.stderr
        bad = [*commands[0][:-2], "limit", "many"]
        refused = subprocess.run(bad, capture_output=True, text=True)
        assert refused.returncode == 1 and "Illegal" in refused.stderr  # tc's own parser, not the kernel
