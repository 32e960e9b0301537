"""A kernel-shaped link for split execution: one network namespace per stage, veth between them.

Where the process may (root or CAP_NET_ADMIN, and iproute2's ``ip``/``tc`` are installed),
stage k runs in namespace ``<run>-k``; a veth pair joins namespaces k and k+1 (10.77.k.1 and
10.77.k.2, /30), so TCP's own behaviour (slow start, Nagle, retransmission, buffer limits) is
in every measured transfer. What shapes each part of a link, exactly (``LinkShaping``):

- rate: ``tbf`` on the sender's veth (kernel), at the profile's bandwidth x (1 - loss) where
  loss is not kernel-shaped, its bandwidth where it is; tbf counts whole frames, so the payload per
  segment (TCP_MAXSEG, read from a connection across the veth) and the headers around it (the veth's
  MTU and Ethernet header) are read when the hop is built and modelled in the hop's profile
  (``Hop.link``: network.LinkProfile.wire_bytes), which the record says (``LinkShaping.headers``);
- delay, jitter, loss: ``netem`` where the kernel has it (delay RTT/2 on each direction, so
  TCP sees the profile's RTT; loss on the data direction); where it does not (this project's
  machines: "Specified qdisc kind is unknown"), delay and jitter are added by a user-space
  relay in the receiver's namespace that holds each chunk of bytes for the one-way delay (the
  relay ends TCP, so the sender's TCP does not see that delay in its RTT), and loss is only
  modelled as lost goodput (the tbf rate), which is the predictor's own model.

Cleanup: namespaces hold every veth and qdisc, so deleting the namespaces removes all of it.
A run's namespaces are named ``edgeai-<pid>-<hex>-k``; ``close`` deletes them; a reaper process
deletes them when the creating process dies however it dies (SIGKILL included: the reaper
sees its pipe close); and every new lab first reclaims namespaces whose creating pid is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import queue
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from ..errors import ConfigError, DeviceUnavailable, MeasurementError
from .network import LinkProfile

PREFIX = "edgeai"
NAME = re.compile(rf"^{PREFIX}-(\d+)-([0-9a-f]{{4}})-(\d+|probe)$")
CLONE_NEWNET = 0x40000000
MIN_RATE_BPS = 8_000  # tc's rate tables count bytes per second; below this an MTU takes seconds
MAX_HOLD_CHUNKS = 4096  # a relay's queue of held chunks (64 KiB each at most): backpressure, not memory
FRAME_BYTES = 1514  # an Ethernet frame at MTU 1500, as tbf counts it on a veth
LINK_HEADER_BYTES = {"ether": 14}  # by `ip -j link` link_type: the header a frame carries around its IP packet
UP, DOWN = "eai-up", "eai-dn"  # in namespace k: DOWN leads to k+1, UP to k-1


@functools.cache
def unavailable() -> str | None:
    """Why kernel-shaped links cannot be built here (None when they can): tried once per process, by
    building a namespace with a veth pair and a tbf qdisc and removing it (a root container without
    the capabilities, or a kernel without veth or tbf, says so here)."""
    if sys.platform != "linux":
        return f"network namespaces are Linux-only (this is {sys.platform})"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"the '{tool}' command (iproute2) is not installed: apt-get install iproute2"
    if os.geteuid() != 0:
        return "creating network namespaces needs root or CAP_NET_ADMIN (this process is not root)"
    probe = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(2)}-probe"
    try:
        for step in (("ip", "netns", "add", probe),
                     ("ip", "-n", probe, "link", "add", DOWN, "type", "veth", "peer", "name", UP),
                     ("tc", "-n", probe, "qdisc", "add", "dev", DOWN, "root", "tbf", "rate", "1mbit",
                      "burst", "3028", "limit", "65536")):
            done = _run(*step, check=False)
            if done.returncode:
                return f"'{' '.join(step[:4])} ...' failed here: {(done.stderr or done.stdout).strip()}"
    finally:
        delete([probe])
    return None


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode:
        raise MeasurementError(f"'{' '.join(cmd)}' failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def namespaces() -> list[str]:
    """Every named network namespace on the host."""
    out = _run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete(names: Sequence[str]) -> None:
    for name in names:
        _run("ip", "netns", "delete", name, check=False)


def reclaim() -> list[str]:
    """Delete the namespaces of runs whose process is gone; the names reclaimed."""
    dead = [n for n in namespaces() if (m := NAME.match(n)) and not _alive(int(m.group(1)))]
    delete(dead)
    return dead


def _libc_setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise MeasurementError(f"setns: {os.strerror(err)}")


def enter(name: str) -> None:
    """Move the calling thread into namespace ``name`` (a stage process does this first)."""
    try:
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    except OSError as exc:
        raise MeasurementError(f"network namespace '{name}' is gone ({exc.strerror})") from None
    try:
        _libc_setns(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run a block (e.g. open a socket) in namespace ``name``, then come back; sockets stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter(name)
        yield
    finally:
        _libc_setns(own)
        os.close(own)


@dataclass(frozen=True)
class LinkShaping:
    """Which mechanism realised each part of one link: what the record and the claim say."""

    link: str
    rate: str
    delay: str
    jitter: str
    loss: str
    rate_bits_per_s: float
    one_way_delay_ms: float
    jitter_ms: float
    loss_fraction: float
    burst_bytes: int = 0  # bytes the rate lets through unpaced after an idle pause (kernel tbf's bucket)
    headers: str = "none"  # how per-segment header bytes enter the predicted goodput
    segment_payload_bytes: int = 0  # TCP payload per full segment (TCP_MAXSEG), where read
    segment_frame_bytes: int = 0    # what the shaper counts for one full segment (MTU + link header)

    @property
    def kernel_parts(self) -> list[str]:
        return [p for p in ("rate", "delay", "jitter", "loss") if getattr(self, p).startswith("kernel")]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kernel_shaped": self.kernel_parts}


def user_space(link: LinkProfile) -> LinkShaping:
    """The loopback link through a user-space relay (relay_main): every part is the predictor's own model."""
    model = "user-space relay (the predictor's own model): "
    return LinkShaping(link.name or f"{link.src}->{link.dst}", model + "bytes serialised at the goodput",
                       model + "a delay line holding each chunk RTT/2 after it is serialised (messages overlap)"
                       if link.one_way_s else "none",
                       model + "normal, standard deviation jitter_ms" if link.jitter_ms else "none",
                       model + "lost goodput" if link.loss else "none", link.goodput_bytes_per_s * 8,
                       link.one_way_s * 1e3, link.jitter_ms, link.loss,
                       headers="none: the relay serialises payload bytes at the goodput, as the predictor prices them")


def validate(link: LinkProfile) -> None:
    """ConfigError, one line, for a profile the kernel cannot shape."""
    rate = link.bandwidth_mbps * 1e6 * (1 - link.loss)
    if rate < MIN_RATE_BPS:
        label = link.name or f"{link.src}->{link.dst}"
        raise ConfigError([(f"link {label}: {rate:g} bit/s is below the {MIN_RATE_BPS} bit/s a kernel-shaped "
                            "link supports (tc counts bytes per second)")])


@dataclass(frozen=True)
class Hop:
    """How stage k reaches stage k+1 over link k."""

    sender_ns: str
    receiver_ns: str
    address: str   # the receiver's end of the veth
    relay: bool    # delay added by a user-space relay in the receiver's namespace
    shaping: LinkShaping
    link: LinkProfile  # the profile as this hop realises it: its TCP segments' headers modelled


class Lab:
    """Namespaces and shaped veth links for one split execution; a context manager that cleans up."""

    def __init__(self, links: Sequence[LinkProfile], netem: bool | None = None):
        why = unavailable()
        if why:
            raise DeviceUnavailable(f"a kernel-shaped link cannot be built here: {why}")
        for link in links:
            validate(link)
        self.reclaimed = reclaim()
        self.run = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(2)}"
        self.names = [f"{self.run}-{k}" for k in range(len(links) + 1)]
        self._reaper = _start_reaper(self.names)
        self.hops: list[Hop] = []
        try:
            for name in self.names:
                _run("ip", "netns", "add", name)
                _run("ip", "-n", name, "link", "set", "lo", "up")
            self.netem = _has_netem(self.names[0]) if netem is None else netem
            for k, link in enumerate(links):
                self.hops.append(self._join(k, link))
        except BaseException:
            self.close()
            raise

    def _join(self, k: int, link: LinkProfile) -> Hop:
        a, b = self.names[k], self.names[k + 1]
        _run("ip", "-n", a, "link", "add", DOWN, "type", "veth", "peer", "name", UP, "netns", b)
        for ns, dev, host in ((a, DOWN, 1), (b, UP, 2)):
            _run("ip", "-n", ns, "addr", "add", f"10.77.{k}.{host}/30", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
        label = link.name or f"{link.src}->{link.dst}"
        one_way_ms, jitter_ms = link.one_way_s * 1e3, link.jitter_ms
        address = f"10.77.{k}.2"
        if self.netem:
            rate = link.bandwidth_mbps * 1e6
            for command in netem_commands(a, b, link):
                _run(*command)
            _tbf(a, DOWN, rate, parent=("parent", "1:1"))
            kernel = "kernel netem"
            parts = ("kernel tbf", kernel if one_way_ms else "none", kernel if jitter_ms else "none",
                     kernel if link.loss else "none")
            relayed = False
        else:
            rate = link.rate_bytes_per_s * 8
            _tbf(a, DOWN, rate)
            relay = "user-space relay in the receiver's namespace (TCP's RTT does not include it)"
            parts = ("kernel tbf" + (" (at bandwidth x (1 - loss))" if link.loss else ""),
                     relay if one_way_ms else "none", relay if jitter_ms else "none",
                     "modelled as lost goodput in the tbf rate (no netem here): the predictor's own model"
                     if link.loss else "none")
            relayed = bool(one_way_ms or jitter_ms)
        payload, frame, how = segment_sizes(a, b, address)
        shaped = replace(link, segment_payload_bytes=payload, segment_header_bytes=frame - payload)
        headers = (f"modelled: {frame - payload} header bytes around each {payload}-byte segment ({how}): predicted "
                   f"goodput {payload / frame:.4f} of the tbf rate, the last segment of a message partial")
        shaping = LinkShaping(label, *parts, rate, one_way_ms, jitter_ms, link.loss, tbf_burst(rate), headers,
                              payload, frame)
        return Hop(a, b, address, relayed, shaping, shaped)

    def qdiscs(self) -> dict[str, str]:
        """``tc qdisc show`` of every namespace (what the kernel really applied), for the record."""
        return {ns: _run("tc", "-n", ns, "qdisc", "show", check=False).stdout.strip() for ns in self.names}

    def close(self) -> None:
        delete([n for n in self.names if n in set(namespaces())])
        if self._reaper.poll() is None:
            self._reaper.stdin.close()  # type: ignore[union-attr]
            try:
                self._reaper.wait(5)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
                self._reaper.wait(5)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure_goodput(lab: Lab, nbytes: int, hop: int = 0, timeout_s: float = 60.0) -> tuple[float, int]:
    """Push ``nbytes`` over TCP across hop ``hop`` of ``lab``: (seconds to the last byte received, bytes
    received). What a kernel-shaped link really delivers, headers and TCP's behaviour included."""
    h = lab.hops[hop]
    with inside(h.receiver_ns):
        srv = socket.create_server((h.address, 0))
    srv.settimeout(timeout_s)
    got: dict[str, float] = {}

    def receive() -> None:
        conn, _ = srv.accept()
        conn.settimeout(timeout_s)
        n = 0
        while data := conn.recv(1 << 16):
            n += len(data)
        got["end"], got["n"] = time.perf_counter(), n
        conn.close()

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    with inside(h.sender_ns):
        sock = socket.create_connection((h.address, srv.getsockname()[1]), timeout=timeout_s)
    start = time.perf_counter()
    sock.sendall(bytes(nbytes))
    sock.close()
    t.join(timeout_s)
    srv.close()
    if "end" not in got:
        raise MeasurementError(f"{nbytes} bytes did not cross {h.shaping.link} within {timeout_s:g} s")
    return got["end"] - start, int(got["n"])


def segment_sizes(sender_ns: str, receiver_ns: str, address: str) -> tuple[int, int, str]:
    """(TCP payload per full segment, bytes the sender's shaper counts for it, how both were read) on one hop.

    The payload is TCP_MAXSEG of a connection across the hop (after the handshake it is the MSS less the
    TCP options in use: 1448 at MTU 1500 with timestamps); the frame is the sender's veth MTU plus its link
    header (`ip -j link`), which is what tbf counts per packet (per segment of a GSO packet too)."""
    with inside(receiver_ns):
        srv = socket.create_server((address, 0))
    try:
        srv.settimeout(10.0)
        with inside(sender_ns):
            sock = socket.create_connection((address, srv.getsockname()[1]), timeout=10.0)
        peer, _ = srv.accept()
        payload = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
        sock.close()
        peer.close()
    finally:
        srv.close()
    shown = json.loads(_run("ip", "-n", sender_ns, "-j", "link", "show", "dev", DOWN).stdout)[0]
    kind = shown.get("link_type", "?")
    if kind not in LINK_HEADER_BYTES:
        raise MeasurementError(f"veth {DOWN} in '{sender_ns}' has link type '{kind}': its header size is not known "
                               f"(known: {', '.join(LINK_HEADER_BYTES)})")
    mtu = int(shown["mtu"])
    return payload, mtu + LINK_HEADER_BYTES[kind], (f"TCP_MAXSEG {payload} of a connection across this veth, "
                                                     f"MTU {mtu} + {LINK_HEADER_BYTES[kind]}-byte {kind} header")


def tbf_burst(rate_bps: float) -> int:
    """tbf's bucket: 1 ms of bytes, one Ethernet frame at least (tbf cannot send a packet larger than its
    bucket). A message after an idle pause gets this many bytes through unpaced, which a link of that rate
    would serialise: so the smallest bucket, and the record says how large it is (``burst_bytes``)."""
    return max(FRAME_BYTES, int(rate_bps / 8 * 1e-3))


def _tbf(ns: str, dev: str, rate_bps: float, parent: tuple[str, ...] = ("root",)) -> None:
    """tbf at ``rate_bps``: a bucket of tbf_burst bytes, a queue of 0.5 s."""
    rate_bytes = rate_bps / 8
    burst = tbf_burst(rate_bps)
    limit = max(64 << 10, int(rate_bytes * 0.5))
    _run("tc", "-n", ns, "qdisc", "add", "dev", dev, *parent, "tbf", "rate", f"{int(rate_bps)}bit",
         "burst", str(burst), "limit", str(limit))


def netem_commands(sender_ns: str, receiver_ns: str, link: LinkProfile) -> list[tuple[str, ...]]:
    """The ``tc`` commands that put ``link``'s delay, jitter and loss on a hop with netem: the data
    direction (the sender's veth, handle 1: so tbf can sit under it) and, for the RTT TCP sees, the
    return direction. tc-netem(8): ``tc qdisc ... dev DEVICE ] add netem OPTIONS`` with ``limit
    PACKETS``, ``delay TIME [ JITTER ...]`` and ``loss [ random ] PERCENT``."""
    one_way_ms = link.one_way_s * 1e3
    netem = netem_delay(one_way_ms, link.jitter_ms)
    commands = [("tc", "-n", sender_ns, "qdisc", "add", "dev", DOWN, "root", "handle", "1:", "netem", *netem,
                 *(["loss", "random", f"{link.loss * 100:.4f}%"] if link.loss else []), "limit", "100000")]
    if one_way_ms:
        commands.append(("tc", "-n", receiver_ns, "qdisc", "add", "dev", UP, "root", "netem", *netem,
                         "limit", "100000"))
    return commands


def netem_delay(one_way_ms: float, jitter_ms: float) -> list[str]:
    """netem's delay arguments for a one-way delay with ``jitter_ms`` as its standard deviation.

    tc-netem(8): ``delay TIME [ JITTER [ CORRELATION ]] [ distribution { uniform | normal | pareto |
    paretonormal } ]``; without a distribution the jitter is uniform over TIME +- JITTER, so the
    normal table is named, making JITTER the standard deviation, as LinkProfile.jitter_ms and the
    user-space relay (random.gauss) take it."""
    if not jitter_ms:
        return ["delay", f"{one_way_ms:.3f}ms"]
    return ["delay", f"{one_way_ms:.3f}ms", f"{jitter_ms:.3f}ms", "distribution", "normal"]


def _has_netem(ns: str) -> bool:
    """Whether this kernel has netem (tried on the namespace's loopback, then removed)."""
    ok = _run("tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check=False)
    if ok.returncode:
        return False
    _run("tc", "-n", ns, "qdisc", "del", "dev", "lo", "root", check=False)
    return True


def _start_reaper(names: Sequence[str]) -> subprocess.Popen[bytes]:
    """A process that deletes ``names`` once its stdin closes, i.e. when this process ends however.

    Not a lab.child: those die with their parent by design, and this one must outlive it."""
    return subprocess.Popen([sys.executable, "-m", "pytest_edgeai.split.netns", *names],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def relay_main(conn: Connection, ns: str | None, host: str, target_port: int, delay_s: float, jitter_s: float,
               seed: int, timeout_s: float, rate_bytes_per_s: float = 0.0) -> None:
    """Forward one TCP stream to 127.0.0.1:target_port through a delay line (in namespace ``ns`` when given).

    Each chunk read is stamped when it arrives; with ``rate_bytes_per_s`` (the user-space link) it is first
    serialised at that rate behind the bytes before it; then it is held for the delay (plus normal jitter of
    standard deviation ``jitter_s``). The sender is never held, so several messages are in flight during the
    delay, as on a real link. Chunks keep their order: a chunk is due at max(serialised + delay + jitter,
    the previous chunk's due time).
    """
    try:
        if ns:
            enter(ns)
        srv = socket.create_server((host, 0))
        srv.settimeout(timeout_s)
        conn.send(("port", srv.getsockname()[1]))
        up, _ = srv.accept()
        down = socket.create_connection(("127.0.0.1", target_port), timeout=timeout_s)
        for s in (up, down):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up.settimeout(None)
        held: queue.Queue[tuple[float, bytes]] = queue.Queue(MAX_HOLD_CHUNKS)
        rng = random.Random(seed)

        def hold() -> None:
            due = free = 0.0
            while data := up.recv(64 << 10):
                sent = time.monotonic()
                if rate_bytes_per_s:  # the link is busy serialising until ``free``
                    sent = free = max(sent, free) + len(data) / rate_bytes_per_s
                due = max(sent + delay_s + (rng.gauss(0.0, jitter_s) if jitter_s else 0.0), due)
                held.put((due, data))
            held.put((0.0, b""))

        threading.Thread(target=hold, daemon=True).start()
        while True:
            due, data = held.get()
            if not data:
                break
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            down.sendall(data)
        down.shutdown(socket.SHUT_WR)
        # the stage's replies (none today) and its close come back unheld
        while up.recv(1 << 16):
            pass
    except Exception as exc:  # noqa: BLE001 - the relay's failure, in words, for the executor to report
        with contextlib.suppress(OSError):
            conn.send(("error", f"relay into '{ns or 'loopback'}' failed: {type(exc).__name__}: {exc}"))


def load_main(conn: Connection, ns: str | None, cpus: Sequence[int], duty: float, period_s: float,
              seconds: float) -> None:
    """A bounded CPU load: busy ``duty`` of every period on ``cpus``, for at most ``seconds``
    (in namespace ``ns`` when given: the loaded tier's).

    Stops at its time limit or as soon as its parent is gone, whichever comes first.
    """
    if ns:
        enter(ns)
    os.sched_setaffinity(0, set(cpus))
    parent, end = os.getppid(), time.monotonic() + seconds
    while time.monotonic() < end and os.getppid() == parent:
        start = time.monotonic()
        while time.monotonic() - start < duty * period_s:
            pass
        time.sleep(max(0.0, period_s * (1 - duty)))


def _reap(names: Sequence[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdin.buffer.read()  # returns when the lab's process closes the pipe or dies
    delete([n for n in names if NAME.match(n)])


if __name__ == "__main__":
    _reap(sys.argv[1:])
    sys.exit(0)

