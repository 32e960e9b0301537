"""Tensors over TCP with a shaped link: framing, a token-bucket sender, bounded receives.

Frame = 24-byte header (magic, version, kind, dtype, ndim, sequence, part index, part count,
payload length) + ndim x uint64 dims + payload. A receiver checks the header against the
dtype table, the dims against the length, and the length against ``max_frame_bytes`` before
it allocates anything, so a malformed or oversized frame is refused at once. Every socket
operation has a timeout; a peer that closes mid-frame is reported as such, never waited on.

Shaping (sender side): each message first waits RTT/2 (one-way propagation), then its bytes
are paced by a token bucket at the link's goodput (bandwidth x (1 - loss)), the same model
network.LinkProfile.transfer_s predicts with.
"""

from __future__ import annotations

import math
import socket
import struct
import time
from collections.abc import Sequence

import numpy as np

from ..errors import FrameError, MeasurementError, PeerClosed
from .network import LinkProfile

MAGIC = b"EAIT"
VERSION = 1
HEADER = struct.Struct("!4sBBBBIHHQ")
KIND_TENSOR, KIND_CLOSE = 1, 2
MAX_NDIM = 8
DEFAULT_MAX_FRAME = 256 << 20
DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f2"), 3: np.dtype("u1"), 4: np.dtype("i1"),
          5: np.dtype("<i4"), 6: np.dtype("<i8"), 7: np.dtype("<f8"), 8: np.dtype("?")}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}
CHUNK = 16 << 10


class TokenBucket:
    """Pace bytes at ``rate`` bytes/s with bursts of at most ``burst`` bytes.

    ``reset`` empties the bucket at the start of each message: a link serialises every byte,
    so an idle pause must not let the next message through faster than bytes / rate.
    """

    def __init__(self, rate: float, burst: float = CHUNK):
        self.rate, self.burst = rate, burst
        self.reset()

    def reset(self) -> None:
        self.tokens, self.stamp = 0.0, time.perf_counter()

    def take(self, n: int) -> None:
        now = time.perf_counter()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= n
        if self.tokens < 0:  # borrow, then sleep the debt off
            time.sleep(-self.tokens / self.rate)
            self.stamp = time.perf_counter()
            self.tokens = 0.0


def encode_frame(array: np.ndarray, seq: int, index: int, count: int) -> bytes:
    dtype = np.dtype(array.dtype).newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype not in DTYPE_CODES or array.ndim > MAX_NDIM:
        raise FrameError(f"cannot send a {array.dtype} tensor of {array.ndim} dims "
                         f"(supported: {', '.join(str(d) for d in DTYPE_CODES)}; at most {MAX_NDIM} dims)")
    payload = np.ascontiguousarray(array, dtype=dtype).tobytes()
    head = HEADER.pack(MAGIC, VERSION, KIND_TENSOR, DTYPE_CODES[dtype], array.ndim, seq, index, count,
                       len(payload))
    return head + struct.pack(f"!{array.ndim}Q", *array.shape) + payload


def close_frame() -> bytes:
    return HEADER.pack(MAGIC, VERSION, KIND_CLOSE, 0, 0, 0, 0, 0, 0)


class Channel:
    """One end of a TCP connection carrying framed tensors, shaped when sending over a link."""

    def __init__(self, sock: socket.socket, peer: str, timeout_s: float = 30.0,
                 link: LinkProfile | None = None, max_frame_bytes: int = DEFAULT_MAX_FRAME):
        self.sock, self.peer, self.link, self.max_frame_bytes = sock, peer, link, max_frame_bytes
        self.timeout_s = timeout_s
        sock.settimeout(timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bucket = TokenBucket(link.goodput_bytes_per_s) if link else None

    def send_message(self, seq: int, tensors: Sequence[np.ndarray]) -> None:
        """Send one inference's boundary tensors, paying the link's latency and bandwidth."""
        data = b"".join(encode_frame(t, seq, i, len(tensors)) for i, t in enumerate(tensors))
        if self.link and self.link.one_way_s:
            time.sleep(self.link.one_way_s)
        if self.bucket:
            self.bucket.reset()
        self._send(data)

    def send_close(self) -> None:
        self._send(close_frame())

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            for start in range(0, len(view), CHUNK):
                chunk = view[start:start + CHUNK]
                if self.bucket:
                    self.bucket.take(len(chunk))
                self.sock.sendall(chunk)
        except socket.timeout:
            raise MeasurementError(f"sending to {self.peer}: no progress for {self.timeout_s:g} s") from None
        except OSError as exc:
            raise PeerClosed(f"sending to {self.peer}: the peer closed the connection mid-transfer "
                             f"after {start} of {len(view)} bytes ({exc.strerror or exc})") from None

    def receive_message(self) -> tuple[int, list[np.ndarray]] | None:
        """(sequence, tensors) of the next message, or None when the peer said it is done."""
        tensors: list[np.ndarray] = []
        seq, count = -1, 1
        while len(tensors) < count:
            head = self._recv_exact(HEADER.size, "a frame header", allow_eof=not tensors)
            if head is None:
                raise PeerClosed(f"receiving from {self.peer}: the connection closed between messages "
                                 "without a close frame (did the peer die?)")
            magic, version, kind, code, ndim, fseq, index, fcount, length = HEADER.unpack(head)
            if magic != MAGIC or version != VERSION:
                raise FrameError(f"receiving from {self.peer}: not a tensor frame "
                                 f"(magic {magic!r}, version {version}; expected {MAGIC!r} v{VERSION})")
            if kind == KIND_CLOSE and not tensors:
                return None
            if kind != KIND_TENSOR or code not in DTYPES or ndim > MAX_NDIM:
                raise FrameError(f"receiving from {self.peer}: bad frame header (kind {kind}, dtype code "
                                 f"{code}, {ndim} dims)")
            if length > self.max_frame_bytes:
                raise FrameError(f"receiving from {self.peer}: frame of {length} bytes exceeds the "
                                 f"{self.max_frame_bytes}-byte limit; refused without reading it")
            if tensors and (fseq != seq or fcount != count) or index != len(tensors) or fcount < 1:
                raise FrameError(f"receiving from {self.peer}: frame {index}/{fcount} of message {fseq} "
                                 f"arrived out of order")
            seq, count = fseq, fcount
            shape = struct.unpack(f"!{ndim}Q", self._recv_exact(8 * ndim, "frame dims") or b"")
            if math.prod(shape) * DTYPES[code].itemsize != length:
                raise FrameError(f"receiving from {self.peer}: shape {shape} of {DTYPES[code]} does not "
                                 f"match the frame's {length} bytes")
            payload = self._recv_exact(length, f"a {length}-byte tensor")
            tensors.append(np.frombuffer(payload, DTYPES[code]).reshape(shape))
        return seq, tensors

    def _recv_exact(self, n: int, what: str, allow_eof: bool = False) -> bytearray | None:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            try:
                r = self.sock.recv_into(view[got:], n - got)
            except socket.timeout:
                raise MeasurementError(f"receiving {what} from {self.peer}: nothing for "
                                       f"{self.timeout_s:g} s (after {got} of {n} bytes)") from None
            except OSError as exc:
                raise PeerClosed(f"receiving {what} from {self.peer}: {exc.strerror or exc} after "
                                 f"{got} of {n} bytes") from None
            if r == 0:
                if allow_eof and got == 0:
                    return None
                raise PeerClosed(f"receiving {what} from {self.peer}: the peer closed the connection "
                                 f"after {got} of {n} bytes (did it die mid-transfer?)")
            got += r
        return buf

    def close(self) -> None:
        self.sock.close()


def listen(timeout_s: float) -> socket.socket:
    """A listening socket on 127.0.0.1 with an ephemeral port."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(timeout_s)
    return srv


def accept(srv: socket.socket, peer: str, timeout_s: float, max_frame_bytes: int = DEFAULT_MAX_FRAME,
           ) -> Channel:
    try:
        sock, _ = srv.accept()
    except socket.timeout:
        raise MeasurementError(f"waiting for {peer} to connect: nothing for {timeout_s:g} s") from None
    return Channel(sock, peer, timeout_s, max_frame_bytes=max_frame_bytes)


def connect(port: int, peer: str, timeout_s: float, link: LinkProfile | None = None) -> Channel:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    except OSError as exc:
        raise MeasurementError(f"connecting to {peer} on 127.0.0.1:{port}: {exc}") from None
    return Channel(sock, peer, timeout_s, link)
