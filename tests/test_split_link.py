"""Framing, shaping and failure handling of the split link (loopback TCP, no real network)."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import struct
import threading
import time
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import tomllib

from pytest_edgeai import config
from pytest_edgeai.errors import ConfigError, FrameError, MeasurementError, PeerClosed
from pytest_edgeai.split.link import (
    HEADER,
    KIND_TENSOR,
    MAGIC,
    VERSION,
    Channel,
    accept,
    connect,
    encode_frame,
    hello_frame,
    listen,
    new_token,
)
from pytest_edgeai.split.network import SCISSION_PROFILES, LinkProfile, link_table

TOKEN = new_token()


def pair(timeout=5.0, max_frame=1 << 20, encoding="raw+none"):
    srv = listen(timeout)
    port = srv.getsockname()[1]
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("ch", accept(srv, "sender", timeout, TOKEN, max_frame)))
    t.start()
    tx = connect("127.0.0.1", port, "receiver", timeout, TOKEN, encoding)
    t.join()
    srv.close()
    return tx, result["ch"]


def header(kind=KIND_TENSOR, code=1, ndim=1, seq=0, index=0, count=1, length=4, enc=0, codec=0):
    return HEADER.pack(MAGIC, VERSION, kind, code, ndim, enc, codec, seq, index, count, length)


def test_tensors_round_trip_in_order_with_dtype_and_shape():
    tx, rx = pair()
    arrays = [np.arange(12, dtype=np.float32).reshape(3, 4), np.ones((2, 1, 5), np.float16),
              np.array([1, -2], np.int64), np.zeros((0, 3), np.uint8)]
    tx.send_message(7, arrays)
    tx.send_close()
    seq, got = rx.receive_message()
    assert seq == 7
    for a, b in zip(arrays, got):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert rx.receive_message() is None


def test_oversized_frame_is_refused_without_allocating():
    tx, rx = pair(max_frame=1 << 20)
    huge = 8 << 30  # claims 8 GiB
    tx.sock.sendall(header(code=3, seq=1, length=huge) + struct.pack("!Q", huge))
    tracemalloc.start()
    with pytest.raises(FrameError, match="over the 1048576-byte limit per message"):
        rx.receive_message()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("header, match", [
    (HEADER.pack(b"HTTP", VERSION, KIND_TENSOR, 1, 1, 0, 0, 0, 0, 1, 4), "not a tensor frame"),
    (header(code=99), "bad frame header"),
    (header(enc=7), "bad frame header"),
    (header(length=12) + struct.pack("!Q", 2), "does not match"),
    (header(index=3) + struct.pack("!Q", 1), "out of order"),
    (header(length=0, ndim=2) + struct.pack("!2Q", 0, 2**63), "larger than the 1048576-byte message limit"),
    (header(length=16, codec=1) + struct.pack("!Q", 1), "does not decompress"),
])
def test_malformed_frames_are_refused(header, match):
    tx, rx = pair()
    tx.sock.sendall(header + b"\0" * 16)
    with pytest.raises(FrameError, match=match):
        rx.receive_message()


def test_peer_closing_mid_frame_is_reported_not_waited_on():
    tx, rx = pair(timeout=30.0)
    frame = encode_frame(np.zeros(1000, np.float32), 1, 0, 1)
    tx.sock.sendall(frame[:100])
    tx.close()
    t0 = time.monotonic()
    with pytest.raises(PeerClosed, match="after 66 of 4000 bytes"):
        rx.receive_message()
    assert time.monotonic() - t0 < 5  # not the 30 s timeout


def test_silent_peer_times_out():
    _tx, rx = pair(timeout=0.3)
    with pytest.raises(MeasurementError, match="not complete within 0.3 s"):
        rx.receive_message()


def test_a_header_claiming_256_mib_allocates_only_what_arrives():
    tx, rx = pair(timeout=0.5, max_frame=512 << 20)
    claim = 256 << 20
    tx.sock.sendall(header(code=3, length=claim) + struct.pack("!Q", claim) + b"\0" * 1000)
    tracemalloc.start()
    with pytest.raises(MeasurementError, match="after 1000 of 268435456 bytes"):
        rx.receive_message()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20  # the claim was never allocated


def test_the_limit_is_per_message_not_per_frame():
    tx, rx = pair(max_frame=1 << 20)
    frames = [header(code=3, index=i, count=5, length=400_000) + struct.pack("!Q", 400_000) for i in range(5)]
    tx.sock.sendall(frames[0] + b"\0" * 400_000 + frames[1] + b"\0" * 400_000 + frames[2])
    with pytest.raises(FrameError, match="declares 1200000 bytes so far, over the 1048576-byte limit per message"):
        rx.receive_message()


def test_a_peer_trickling_bytes_is_cut_off_by_the_message_deadline():
    tx, rx = pair(timeout=1.0)
    frame = encode_frame(np.zeros(100, np.float32), 1, 0, 1)

    def trickle():
        for b in frame[:30]:
            try:
                tx.sock.sendall(bytes([b]))
            except OSError:
                return
            time.sleep(0.2)  # each byte well inside the 1 s timeout, the message far outside it

    threading.Thread(target=trickle, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(MeasurementError, match="not complete within 1 s"):
        rx.receive_message()
    assert time.monotonic() - t0 < 3.0  # one deadline, not 1 s per byte (6 s for these 30)


def closed_on(sock) -> bool:
    """Whether the other end closed this connection (an orderly close or a reset)."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def test_a_stranger_on_the_port_is_refused_and_the_real_peer_served():
    srv = listen(5.0)
    port = srv.getsockname()[1]
    result = {}

    def serve():
        try:
            result["ch"] = accept(srv, "sender", 5.0, TOKEN)
        except MeasurementError as exc:
            result["error"] = exc

    t = threading.Thread(target=serve)
    t.start()
    stranger = socket.create_connection(("127.0.0.1", port))
    stranger.sendall(hello_frame(b"x" * 32))  # a wrong token
    assert closed_on(stranger)
    wrong_kind = socket.create_connection(("127.0.0.1", port))
    wrong_kind.sendall(encode_frame(np.zeros(2, np.float32), 1, 0, 1))
    assert closed_on(wrong_kind)
    tx = connect("127.0.0.1", port, "receiver", 5.0, TOKEN)
    t.join()
    tx.send_message(1, [np.ones(3, np.float32)])
    assert result["ch"].receive_message()[1][0].tolist() == [1.0, 1.0, 1.0]


def test_no_peer_with_the_token_is_one_clear_line():
    srv = listen(0.5)
    stranger = socket.create_connection(("127.0.0.1", srv.getsockname()[1]))
    stranger.sendall(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(MeasurementError, match=r"no peer with this run's token within 0.5 s; refused 1"):
        accept(srv, "sender", 0.5, TOKEN)


@pytest.mark.parametrize("key", ["raw+none", "fp16+zlib", "int8+none", "raw+zstd", "fp16+lz4"])
def test_tensors_travel_in_the_plans_encoding_and_are_decoded(key):
    tx, rx = pair(encoding=key)
    x = np.linspace(-3, 5, 4000, dtype=np.float32).reshape(40, 100)
    ids = np.arange(7, dtype=np.int64)  # an integer tensor always travels raw
    sent = tx.send_message(3, [x, ids])
    _, (y, got_ids) = rx.receive_message()
    assert y.dtype == np.float32 and y.shape == x.shape and got_ids.tolist() == ids.tolist()
    tolerance = {"raw": 0.0, "fp16": 5e-3, "int8": (8 / 255) / 2 + 1e-6}[key.split("+")[0]]
    assert np.max(np.abs(y - x)) <= tolerance
    if key != "raw+none":
        assert sent < x.nbytes + ids.nbytes  # the encoding really shrank what crossed


def test_a_bomb_that_inflates_past_its_dims_is_refused():
    import zlib

    tx, rx = pair()
    bomb = zlib.compress(b"\0" * (8 << 20))
    tx.sock.sendall(header(code=3, length=len(bomb), codec=1) + struct.pack("!Q", 16) + bomb)
    with pytest.raises(FrameError, match="inflates past the 16 bytes"):
        rx.receive_message()


def _read_a_little_then_die(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.recv(1000)
    os._exit(3)


def test_sender_learns_that_a_peer_process_died_mid_transfer():
    srv = listen(10.0)
    proc = mp.get_context("spawn").Process(target=_read_a_little_then_die, args=(srv.getsockname()[1],))
    proc.start()
    sock, _ = srv.accept()
    tx = Channel(sock, "dying peer", timeout_s=10.0)
    with pytest.raises(PeerClosed, match="dying peer: the peer closed the connection mid-transfer"):
        tx.send_message(1, [np.zeros(16 << 20, np.uint8)])  # far more than socket buffers hold
    proc.join(5)
    assert proc.exitcode == 3


def test_link_profiles_validate_and_compute_transfer_time():
    with pytest.raises(ConfigError, match="jitter_ms is -1"):
        LinkProfile("device", "cloud", bandwidth_mbps=1, rtt_ms=10, jitter_ms=-1)
    link = LinkProfile("device", "cloud", bandwidth_mbps=8.0, rtt_ms=100.0, loss=0.5)
    assert link.transfer_s(1_000_000) == pytest.approx(0.05 + 1_000_000 / 500_000)
    with pytest.raises(ConfigError, match="bandwidth_mbps is 0"):
        LinkProfile("device", "cloud", bandwidth_mbps=0, rtt_ms=10)
    with pytest.raises(ConfigError, match="loss is 1.0"):
        LinkProfile("device", "cloud", bandwidth_mbps=1, rtt_ms=10, loss=1.0)
    with pytest.raises(ConfigError, match="both go device -> edge"):
        link_table([SCISSION_PROFILES[0], SCISSION_PROFILES[0]])
    assert set(link_table(SCISSION_PROFILES)) == {("device", "edge"), ("device", "cloud"), ("edge", "cloud")}


def test_segment_headers_are_priced_per_segment_the_last_one_partial():
    bare = LinkProfile("device", "cloud", bandwidth_mbps=8.0, rtt_ms=0.0)
    framed = replace(bare, segment_payload_bytes=1448, segment_header_bytes=66)
    assert bare.wire_bytes(3000) == 3000 and bare.goodput_bytes_per_s == bare.rate_bytes_per_s == 1e6
    assert framed.wire_bytes(2896) == 2896 + 2 * 66 and framed.wire_bytes(2897) == 2897 + 3 * 66
    assert framed.goodput_bytes_per_s == pytest.approx(1e6 * 1448 / 1514)
    assert framed.serialise_s(1448) == pytest.approx(1514 / 1e6)
    with pytest.raises(ConfigError, match="headers only with a payload per segment"):
        replace(bare, segment_header_bytes=66)


CPU = '[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n'


def parse_toml(text):
    return config.parse(tomllib.loads(CPU + text))


LINK_TOML = '[links.l]\nfrom = "device"\nto = "cloud"\nbandwidth_mbps = 10\nrtt_ms = 20\n'


def test_jitter_ms_from_devices_toml_reaches_the_link_profile():
    link = LinkProfile.from_config(parse_toml(LINK_TOML + "jitter_ms = 2.5\n").links["l"])
    assert link.jitter_ms == 2.5 and link.rtt_ms == 20.0
    assert LinkProfile.from_config(parse_toml(LINK_TOML).links["l"]).jitter_ms == 0.0


@pytest.mark.parametrize(("line", "message"), [
    ("jitter_ms = -1\n", "links.l.jitter_ms: -1 is not a finite number >= 0"),
    ('jitter_ms = "2"\n', "links.l.jitter_ms: '2' is not a finite number >= 0"),
    ("jitter_ms = nan\n", "links.l.jitter_ms: nan is not a finite number >= 0"),
    ("jiter_ms = 2\n", "links.l.jiter_ms: unknown key (did you mean 'jitter_ms'?)"),
])
def test_a_bad_jitter_ms_is_one_clear_line(line, message):
    with pytest.raises(ConfigError) as err:
        parse_toml(LINK_TOML + line)
    assert message in str(err.value)
