"""Frames on the call channel between the check and the runner (a Unix stream socket).

A frame is three parts: ``meta`` (a small JSON object), ``document`` (JSON bytes) and ``arrays``
(``.npz`` bytes), each preceded by its length as an 8-byte big-endian number. Whoever reads gives
the most bytes it accepts and a deadline; a peer that sends more, sends less, or is silent past
the deadline gets :class:`WireError`, never a frame. Neither side trusts the other's frames
beyond their lengths: what they hold is read by the usual readers.
"""
from __future__ import annotations

import json
import socket
import struct
import time

LENGTH = struct.Struct(">Q")
MAX_META = 64 << 10


class WireError(Exception):
    """The peer closed the channel, was silent past the deadline, or broke the frame format."""


def send(sock: socket.socket, meta: dict, document: bytes = b"", arrays: bytes = b"") -> None:
    meta_bytes = json.dumps(meta).encode()
    parts = [LENGTH.pack(len(meta_bytes)), LENGTH.pack(len(document)), LENGTH.pack(len(arrays)),
             meta_bytes, document, arrays]
    try:
        sock.sendall(b"".join(parts))
    except OSError as error:
        raise WireError(f"the channel is closed ({error.strerror or error})") from None


def _exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WireError("no answer in time")
            sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except socket.timeout:
            raise WireError("no answer in time") from None
        except OSError as error:
            raise WireError(f"the channel broke ({error.strerror or error})") from None
        if not chunk:
            raise WireError("the channel was closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket, max_bytes: int, deadline: float | None) -> tuple[dict, bytes, bytes]:
    """The next frame (meta, document, arrays); document and arrays together at most `max_bytes`.
    `deadline` is a ``time.monotonic()`` value (None: wait as long as it takes)."""
    sizes = [LENGTH.unpack(_exactly(sock, LENGTH.size, deadline))[0] for _ in range(3)]
    if sizes[0] > MAX_META or sizes[1] + sizes[2] > max_bytes:
        raise WireError(f"a frame of {sum(sizes)} bytes, more than the {max_bytes} allowed")
    meta_bytes, document, arrays = (_exactly(sock, size, deadline) for size in sizes)
    try:
        meta = json.loads(meta_bytes)
    except ValueError:
        raise WireError("a frame whose header is not JSON") from None
    if not isinstance(meta, dict):
        raise WireError("a frame whose header is not a JSON object")
    return meta, document, arrays
