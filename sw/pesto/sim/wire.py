"""The message format between SimAccelerator (host) and sim/serve.py (inside the simulator).

One message = 4-byte big-endian header length, a UTF-8 JSON header (a flat dict), then
``header["nbytes"]`` raw payload bytes (little-endian uint64 stream words, or nothing).
JSON and raw bytes only: nothing on the socket is ever unpickled or evaluated.
"""

from __future__ import annotations

import json
import socket
import struct

MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 31


class WireClosed(ConnectionError):
    """The peer closed the socket (or died) in the middle of a message."""


def send(sock: socket.socket, header: dict, payload: bytes = b"") -> None:
    header = dict(header, nbytes=len(payload))
    data = json.dumps(header, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(data)) + data + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise WireClosed(f"connection closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def recv(sock: socket.socket) -> tuple[dict, bytes]:
    (length,) = struct.unpack(">I", _recv_exact(sock, 4))
    if length > MAX_HEADER:
        raise ValueError(f"message header of {length} bytes is larger than {MAX_HEADER}: corrupt stream")
    header = json.loads(_recv_exact(sock, length))
    if not isinstance(header, dict):
        raise ValueError("message header is not a JSON object: corrupt stream")
    nbytes = int(header.get("nbytes", 0))
    if not 0 <= nbytes <= MAX_PAYLOAD:
        raise ValueError(f"message payload of {nbytes} bytes out of range: corrupt stream")
    return header, _recv_exact(sock, nbytes) if nbytes else b""
