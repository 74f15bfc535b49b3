"""A minimal WebSocket client (RFC 6455) for bench/console.py: what a
browser does for noVNC, nothing more. Binary frames only, client frames
masked, server pings answered, no extensions (a browser would offer
permessage-deflate, but neither vireod nor websockify compresses binary
VNC traffic worth measuring here).

Python 3 standard library only, like the rest of bench/.
"""

import base64
import hashlib
import os
import socket
import ssl
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WsError(Exception):
    def __init__(self, msg, status=None):
        super().__init__(msg)
        self.status = status


def _mask(payload):
    key = os.urandom(4)
    n = len(payload)
    # XOR as one big integer: fast enough for the small client messages.
    k = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(
        n, "little")
    return key + masked


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + _mask(payload)


class WsTransport:
    """Byte stream over a WebSocket: recv() returns the payload bytes of the
    next data frame(s), send() wraps bytes in one binary frame. `wire_bytes`
    counts what came off the socket (frame headers included, TLS not)."""

    def __init__(self, host, port, path, tls=True, timeout=30, protocols=None):
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the benchmarks' self-signed certificates
            self.sock = ctx.wrap_socket(raw, server_hostname=host)
        else:
            self.sock = raw
        self.buf = bytearray()
        self.wire_bytes = 0
        self.closed = False
        self._handshake(host, port, path, protocols)

    def _handshake(self, host, port, path, protocols):
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nOrigin: https://{host}:{port}\r\n")
        # noVNC offers no subprotocol; QEMU's own listener wants "binary".
        if protocols:
            req += f"Sec-WebSocket-Protocol: {protocols}\r\n"
        req += "\r\n"
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsError("connection closed during the WebSocket handshake")
            self.buf += chunk
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status != 101:
            raise WsError(f"WebSocket upgrade refused: {lines[0]}", status)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise WsError("bad Sec-WebSocket-Accept in the upgrade reply")

    def settimeout(self, t):
        self.sock.settimeout(t)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise EOFError("WebSocket connection closed")
            self.wire_bytes += len(chunk)
            self.buf += chunk

    def recv(self):
        """Payload of the next data frame (never empty); EOFError on close."""
        while True:
            self._need(2)
            b0, b1 = self.buf[0], self.buf[1]
            n = b1 & 0x7F
            off = 2
            if n == 126:
                self._need(4)
                n = struct.unpack_from("!H", self.buf, 2)[0]
                off = 4
            elif n == 127:
                self._need(10)
                n = struct.unpack_from("!Q", self.buf, 2)[0]
                off = 10
            mask = None
            if b1 & 0x80:  # servers must not mask; tolerate it anyway
                self._need(off + 4)
                mask = bytes(self.buf[off:off + 4])
                off += 4
            self._need(off + n)
            payload = bytes(self.buf[off:off + n])
            del self.buf[:off + n]
            if mask:
                k = (mask * (n // 4 + 1))[:n]
                payload = (int.from_bytes(payload, "little") ^
                           int.from_bytes(k, "little")).to_bytes(n, "little")
            op = b0 & 0x0F
            if op in (OP_BINARY, OP_CONT, OP_TEXT):
                if payload:
                    return payload
            elif op == OP_PING:
                self.sock.sendall(frame(OP_PONG, payload))
            elif op == OP_CLOSE:
                self.closed = True
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise EOFError(f"WebSocket closed by the server (code {code})")

    def send(self, data):
        self.sock.sendall(frame(OP_BINARY, data))

    def close(self):
        try:
            if not self.closed:
                self.sock.sendall(frame(OP_CLOSE, struct.pack("!H", 1000)))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class SocketTransport:
    """The same interface over a plain stream socket (unix or TCP)."""

    def __init__(self, sock):
        self.sock = sock
        self.wire_bytes = 0

    @classmethod
    def unix(cls, path, timeout=30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s)

    @classmethod
    def tcp(cls, host, port, timeout=30):
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def recv(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError("connection closed")
        self.wire_bytes += len(chunk)
        return chunk

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
