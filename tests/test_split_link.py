"""Framing, shaping and failure handling of the split link (loopback TCP, no real network)."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import struct
import threading
import time
import tracemalloc

import numpy as np
import pytest

from pytest_edgeai.errors import ConfigError, FrameError, MeasurementError, PeerClosed
from pytest_edgeai.split.link import (HEADER, KIND_TENSOR, MAGIC, VERSION, Channel, TokenBucket, accept, connect,
                                      encode_frame, listen)
from pytest_edgeai.split.network import SCISSION_PROFILES, LinkProfile, link_table


def pair(timeout=5.0, link=None, max_frame=1 << 20):
    srv = listen(timeout)
    port = srv.getsockname()[1]
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("ch", accept(srv, "sender", timeout, max_frame)))
    t.start()
    tx = connect(port, "receiver", timeout, link)
    t.join()
    srv.close()
    return tx, result["ch"]


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
    tx.sock.sendall(HEADER.pack(MAGIC, VERSION, KIND_TENSOR, 3, 1, 1, 0, 1, huge) + struct.pack("!Q", huge))
    tracemalloc.start()
    with pytest.raises(FrameError, match="exceeds the 1048576-byte limit"):
        rx.receive_message()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("header, match", [
    (HEADER.pack(b"HTTP", VERSION, KIND_TENSOR, 1, 1, 0, 0, 1, 4), "not a tensor frame"),
    (HEADER.pack(MAGIC, VERSION, KIND_TENSOR, 99, 1, 0, 0, 1, 4), "bad frame header"),
    (HEADER.pack(MAGIC, VERSION, KIND_TENSOR, 1, 1, 0, 0, 1, 12) + struct.pack("!Q", 2), "does not match"),
    (HEADER.pack(MAGIC, VERSION, KIND_TENSOR, 1, 1, 0, 3, 1, 4) + struct.pack("!Q", 1), "out of order"),
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
    with pytest.raises(PeerClosed, match="after 68 of 4000 bytes"):
        rx.receive_message()
    assert time.monotonic() - t0 < 5  # not the 30 s timeout


def test_silent_peer_times_out():
    tx, rx = pair(timeout=0.3)
    with pytest.raises(MeasurementError, match="nothing for 0.3 s"):
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


def test_shaped_send_takes_the_predicted_time():
    link = LinkProfile("device", "edge", bandwidth_mbps=20.0, rtt_ms=40.0)
    tx, rx = pair(link=link)
    data = np.zeros(250_000, np.uint8)  # 0.1 s at 20 Mbit/s, plus 20 ms one way
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("msg", rx.receive_message()))
    t.start()
    t0 = time.perf_counter()
    tx.send_message(1, [data])
    t.join()
    elapsed = time.perf_counter() - t0
    predicted = link.transfer_s(data.nbytes)
    # a lower bound only (no upper timing bound in unit tests): shaping cannot be faster than the link
    assert elapsed >= 0.95 * predicted
    assert got["msg"][1][0].nbytes == data.nbytes


def test_token_bucket_never_exceeds_its_rate():
    bucket = TokenBucket(rate=1e6, burst=1000)
    time.sleep(0.05)  # idle time must not be banked
    bucket.reset()
    t0 = time.perf_counter()
    for _ in range(100):
        bucket.take(1000)  # 100 kB at 1 MB/s: at least 0.1 s
    assert time.perf_counter() - t0 >= 0.1 - 1e-3


def test_link_profiles_validate_and_compute_transfer_time():
    link = LinkProfile("device", "cloud", bandwidth_mbps=8.0, rtt_ms=100.0, loss=0.5)
    assert link.transfer_s(1_000_000) == pytest.approx(0.05 + 1_000_000 / 500_000)
    with pytest.raises(ConfigError, match="bandwidth_mbps is 0"):
        LinkProfile("device", "cloud", bandwidth_mbps=0, rtt_ms=10)
    with pytest.raises(ConfigError, match="loss is 1.0"):
        LinkProfile("device", "cloud", bandwidth_mbps=1, rtt_ms=10, loss=1.0)
    with pytest.raises(ConfigError, match="both go device -> edge"):
        link_table([SCISSION_PROFILES[0], SCISSION_PROFILES[0]])
    assert set(link_table(SCISSION_PROFILES)) == {("device", "edge"), ("device", "cloud"), ("edge", "cloud")}
