"""Tensors over TCP between split stages: framing, encoding on the wire, bounded receives.

Frame = 26-byte header (magic, version, kind, dtype, ndim, encoding, codec, sequence, part
index, part count, payload length) + ndim x uint64 dims + payload. A tensor travels in the
encoding its plan priced (wire.pack: fp16, int8 with its scale, zlib/zstd/lz4 on top) and is
decoded on the far side back to its own dtype.

What a receiver refuses before it allocates (issue 16, item 11): a peer that does not open
with the run's token (a HELLO frame; anything else on the port is closed and the stage keeps
waiting for its real peer); a dim larger than the message budget (so (0, 2**63) fails even
though its product is 0); a message whose declared bytes, encoded or decoded, summed over its
frames, exceed ``max_message_bytes``; a payload that inflates past the size its dims declare.
Payload memory grows with the bytes that actually arrive (1 MiB at a time), never with what a
header claims. Every message has one deadline (``timeout_s`` from its first byte's wait), so a
peer that trickles a byte every few seconds is cut off, not waited on per recv.

A channel sends unpaced: the link's rate and delay are applied between the stages, by the kernel
(tbf, netem) or by a relay process that serialises and holds the bytes (netns.relay_main), never by
the sending stage, so a stage computes its next query while its last message is on the link.
"""

from __future__ import annotations

import hmac
import math
import secrets
import socket
import struct
import time
from collections.abc import Sequence

import numpy as np

from ..errors import FrameError, MeasurementError, PeerClosed
from . import wire

MAGIC = b"EAIT"
VERSION = 2
HEADER = struct.Struct("!4sBBBBBBIHHQ")
KIND_TENSOR, KIND_CLOSE, KIND_HELLO = 1, 2, 3
MAX_NDIM = 8
TOKEN_BYTES = 32
DEFAULT_MAX_MESSAGE = 64 << 20
DTYPES: dict[int, np.dtype] = {1: np.dtype("<f4"), 2: np.dtype("<f2"), 3: np.dtype("u1"), 4: np.dtype("i1"),
          5: np.dtype("<i4"), 6: np.dtype("<i8"), 7: np.dtype("<f8"), 8: np.dtype("?")}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}
CHUNK = 16 << 10
RECV_STEP = 1 << 20


def encode_frame(array: np.ndarray, seq: int, index: int, count: int, key: str = "raw+none") -> bytes:
    """One tensor as a frame, in encoding ``key`` ('fp16+zstd'; lossy ones on floats only)."""
    dtype = np.dtype(array.dtype).newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype not in DTYPE_CODES or array.ndim > MAX_NDIM:
        raise FrameError(f"cannot send a {array.dtype} tensor of {array.ndim} dims "
                         f"(supported: {', '.join(str(d) for d in DTYPE_CODES)}; at most {MAX_NDIM} dims)")
    array = np.ascontiguousarray(array, dtype=dtype)
    encoding, codec = wire.parse_key(key)
    encoding = wire.wire_encoding(array, encoding)
    payload = wire.compress(wire.encode(array, encoding), codec)
    head = HEADER.pack(MAGIC, VERSION, KIND_TENSOR, DTYPE_CODES[dtype], array.ndim,
                       wire.ENCODINGS.index(encoding), wire.CODECS.index(codec), seq, index, count, len(payload))
    return head + struct.pack(f"!{array.ndim}Q", *array.shape) + payload


def close_frame() -> bytes:
    return HEADER.pack(MAGIC, VERSION, KIND_CLOSE, 0, 0, 0, 0, 0, 0, 0, 0)


def hello_frame(token: bytes) -> bytes:
    return HEADER.pack(MAGIC, VERSION, KIND_HELLO, 0, 0, 0, 0, 0, 0, 0, len(token)) + token


class Deadline:
    """One time limit for a whole message, however its bytes trickle in."""

    def __init__(self, seconds: float):
        self.seconds, self.end = seconds, time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()


class Channel:
    """One end of a TCP connection carrying framed tensors."""

    def __init__(self, sock: socket.socket, peer: str, timeout_s: float = 30.0,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE, encoding: str = "raw+none"):
        wire.parse_key(encoding)
        self.sock, self.peer, self.max_message_bytes = sock, peer, max_message_bytes
        self.timeout_s, self.encoding = timeout_s, encoding
        sock.settimeout(timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.last_decode_s = 0.0  # CPU seconds the last received message took to decompress and decode

    def send_message(self, seq: int, tensors: Sequence[np.ndarray]) -> int:
        """Send one inference's boundary tensors in the channel's encoding; the bytes put on the wire."""
        data = b"".join(encode_frame(t, seq, i, len(tensors), self.encoding) for i, t in enumerate(tensors))
        self.send_bytes(data)
        return len(data)

    def send_close(self) -> None:
        self.send_bytes(close_frame())

    def send_bytes(self, data: bytes) -> None:
        """Write ``data`` within one deadline for the whole of it."""
        view, start = memoryview(data), 0
        deadline = Deadline(self.timeout_s)
        try:
            for start in range(0, len(view), CHUNK):
                chunk = view[start:start + CHUNK]
                left = deadline.remaining()
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
                self.sock.sendall(chunk)
        except TimeoutError:
            raise MeasurementError(f"sending to {self.peer}: {start} of {len(view)} bytes sent in "
                                   f"{self.timeout_s:g} s (the peer stopped reading)") from None
        except OSError as exc:
            raise PeerClosed(f"sending to {self.peer}: the peer closed the connection mid-transfer "
                             f"after {start} of {len(view)} bytes ({exc.strerror or exc})") from None

    def receive_message(self) -> tuple[int, list[np.ndarray]] | None:
        """(sequence, tensors) of the next message, or None when the peer said it is done."""
        deadline = Deadline(self.timeout_s)
        tensors: list[np.ndarray] = []
        seq, count, wire_total, decoded_total = -1, 1, 0, 0
        self.last_decode_s = 0.0
        while len(tensors) < count:
            head = self._recv_exact(HEADER.size, "a frame header", deadline, allow_eof=not tensors)
            if head is None:
                raise PeerClosed(f"receiving from {self.peer}: the connection closed between messages "
                                 "without a close frame (did the peer die?)")
            magic, version, kind, code, ndim, enc, codec, fseq, index, fcount, length = HEADER.unpack(head)
            if magic != MAGIC or version != VERSION:
                raise FrameError(f"receiving from {self.peer}: not a tensor frame "
                                 f"(magic {magic!r}, version {version}; expected {MAGIC!r} v{VERSION})")
            if kind == KIND_CLOSE and not tensors:
                return None
            if (kind != KIND_TENSOR or code not in DTYPES or ndim > MAX_NDIM or enc >= len(wire.ENCODINGS)
                    or codec >= len(wire.CODECS)):
                raise FrameError(f"receiving from {self.peer}: bad frame header (kind {kind}, dtype code "
                                 f"{code}, {ndim} dims, encoding {enc}, codec {codec})")
            wire_total += length
            if wire_total > self.max_message_bytes:
                raise FrameError(f"receiving from {self.peer}: message {fseq} declares {wire_total} bytes "
                                 f"so far, over the {self.max_message_bytes}-byte limit per message; "
                                 "refused without reading it")
            if tensors and (fseq != seq or fcount != count) or index != len(tensors) or fcount < 1:
                raise FrameError(f"receiving from {self.peer}: frame {index}/{fcount} of message {fseq} "
                                 f"arrived out of order")
            seq, count = fseq, fcount
            shape = struct.unpack(f"!{ndim}Q", self._recv_exact(8 * ndim, "frame dims", deadline) or b"")
            if any(d > self.max_message_bytes for d in shape):
                raise FrameError(f"receiving from {self.peer}: dims {shape} have one larger than the "
                                 f"{self.max_message_bytes}-byte message limit; refused")
            dtype, encoding, codec_name = DTYPES[code], wire.ENCODINGS[enc], wire.CODECS[codec]
            elements = math.prod(shape)
            decoded_total += elements * dtype.itemsize
            if decoded_total > self.max_message_bytes:
                raise FrameError(f"receiving from {self.peer}: message {fseq} decodes to {decoded_total} "
                                 f"bytes so far, over the {self.max_message_bytes}-byte limit per message")
            expected = wire.encoded_size(encoding, dtype, elements)
            if codec_name == "none" and length != expected:
                raise FrameError(f"receiving from {self.peer}: shape {shape} of {dtype} in {encoding} "
                                 f"does not match the frame's {length} bytes")
            payload = self._recv_exact(length, f"a {length}-byte tensor", deadline)
            started = time.perf_counter()
            try:
                raw = wire.decompress(bytes(payload or b""), codec_name, expected)
                tensors.append(wire.decode(raw, encoding, dtype, shape))
            except MeasurementError as exc:
                raise FrameError(f"receiving from {self.peer}: {exc}") from None
            self.last_decode_s += time.perf_counter() - started
        return seq, tensors

    def _recv_exact(self, n: int, what: str, deadline: Deadline, allow_eof: bool = False) -> bytearray | None:
        buf, started = bytearray(), False
        while len(buf) < n:
            left = deadline.remaining()
            try:
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
                data = self.sock.recv(min(n - len(buf), RECV_STEP))
            except TimeoutError:
                raise MeasurementError(f"receiving {what} from {self.peer}: the message was not complete "
                                       f"within {deadline.seconds:g} s (after {len(buf)} of {n} bytes)") from None
            except OSError as exc:
                raise PeerClosed(f"receiving {what} from {self.peer}: {exc.strerror or exc} after "
                                 f"{len(buf)} of {n} bytes") from None
            if not data:
                if allow_eof and not started:
                    return None
                raise PeerClosed(f"receiving {what} from {self.peer}: the peer closed the connection "
                                 f"after {len(buf)} of {n} bytes (did it die mid-transfer?)")
            started = True
            buf += data
        return buf

    def close(self) -> None:
        self.sock.close()


def new_token() -> bytes:
    """A per-run secret a stage's peer must present before it is served."""
    return secrets.token_bytes(TOKEN_BYTES)


def listen(timeout_s: float, host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on ``host`` with an ephemeral port."""
    srv = socket.create_server((host, 0))
    srv.settimeout(timeout_s)
    return srv


def accept(srv: socket.socket, peer: str, timeout_s: float, token: bytes,
           max_message_bytes: int = DEFAULT_MAX_MESSAGE) -> Channel:
    """The first connection that presents ``token``; any other is closed and waited past."""
    deadline = Deadline(timeout_s)
    refused: list[str] = []
    while (left := deadline.remaining()) > 0:
        srv.settimeout(left)
        try:
            sock, addr = srv.accept()
        except TimeoutError:
            break
        channel = Channel(sock, peer, min(left, timeout_s), max_message_bytes=TOKEN_BYTES)
        try:
            head = channel._recv_exact(HEADER.size, "a hello", Deadline(min(left, timeout_s)))
            magic, version, kind, *_, length = HEADER.unpack(head or b"")
            ok = magic == MAGIC and version == VERSION and kind == KIND_HELLO and length == TOKEN_BYTES
            presented = channel._recv_exact(TOKEN_BYTES, "a token", Deadline(min(left, timeout_s))) if ok else b""
            if ok and hmac.compare_digest(bytes(presented or b""), token):
                return Channel(sock, peer, timeout_s, max_message_bytes=max_message_bytes)
            refused.append(f"{addr[0]}:{addr[1]} (no valid token)")
        except MeasurementError as exc:
            refused.append(f"{addr[0]}:{addr[1]} ({exc})")
        sock.close()
    extra = f"; refused {len(refused)} other connection(s): {', '.join(refused[:3])}" if refused else ""
    raise MeasurementError(f"waiting for {peer} to connect: no peer with this run's token within "
                           f"{timeout_s:g} s{extra}")


def connect(host: str, port: int, peer: str, timeout_s: float, token: bytes, encoding: str = "raw+none") -> Channel:
    """A channel to ``peer``, opened with the run's token."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise MeasurementError(f"connecting to {peer} on {host}:{port}: {exc}") from None
    channel = Channel(sock, peer, timeout_s, encoding=encoding)
    channel.send_bytes(hello_frame(token))
    return channel
