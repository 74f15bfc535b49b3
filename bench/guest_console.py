"""Runs shell commands in a guest-kit VM through Vireo's serial console
WebSocket (GET /1.0/instances/NAME/console, upgraded), like GuestRun in
tests/e2e/harness.cc. A minimal RFC 6455 client over the unix socket:
Python 3 standard library only.
"""

import base64
import os
import socket
import struct
import time

from benchlib import BenchError


class _WebSocket:
    def __init__(self, sock_path, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(sock_path)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise BenchError(f"console upgrade of {path}: connection closed")
            buf += chunk
        head, _, self.pending = buf.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise BenchError(f"console upgrade of {path}: {status.decode(errors='replace')}")

    def send(self, payload, opcode=0x2):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def _need(self, n):
        while len(self.pending) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("console WebSocket closed")
            self.pending += chunk
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def recv(self):
        """One data frame's payload (b"" for control frames)."""
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        mask = self._need(4) if b1 & 0x80 else None
        data = self._need(n)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        opcode = b0 & 0x0F
        if opcode == 0x8:
            raise BenchError("console WebSocket closed by the server")
        if opcode == 0x9:
            self.send(data, 0xA)
            return b""
        return data if opcode in (0x0, 0x1, 0x2) else b""

    def close(self):
        try:
            self.send(struct.pack("!H", 1000), 0x8)
        except OSError:
            pass
        self.sock.close()


_counter = [0]


def _attach(sock_path, instance, timeout=20):
    """Opens the console; retries while the previous client's detach is
    still being processed (409: one console client at a time)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _WebSocket(sock_path, f"/1.0/instances/{instance}/console")
        except BenchError as e:
            if " 409 " not in str(e) + " " or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def guest_run(sock_path, instance, command, timeout=120):
    """Types `command` into the guest's serial shell and returns what it
    printed between two markers. The markers are built by the guest's shell
    ("$(echo N)"), so the echo of the typed line never matches them. Stays
    attached until the end marker: QEMU drops queued input when the console
    client leaves."""
    _counter[0] += 1
    nonce = f"{os.getpid()}x{_counter[0]}"
    begin, end = f"VB-BEGIN-{nonce}".encode(), f"VB-END-{nonce}".encode()
    typed = f"echo VB-BEGIN-$(echo {nonce}); {command}; echo VB-END-$(echo {nonce})\r"
    deadline = time.monotonic() + timeout
    ws = _attach(sock_path, instance)
    try:
        ws.send(typed.encode())
        out = b""
        while time.monotonic() < deadline:
            ws.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                out += ws.recv()
            except socket.timeout:
                break
            b = out.find(begin)
            if b >= 0:
                e = out.find(end, b)
                if e >= 0:
                    start = out.find(b"\n", b)
                    return out[start + 1:e].decode(errors="replace").replace("\r", "")
        raise BenchError(f"guest command timed out after {timeout}s: {command[:60]}; "
                         f"output tail: {out[-300:].decode(errors='replace')!r}")
    finally:
        ws.close()


def wait_shell(sock_path, instance, timeout=120):
    """Waits until the guest's shell answers (after VIREO-GUEST-UP the init
    still waits for disks before it starts the shell)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if "ready" in guest_run(sock_path, instance, "echo re$(echo ady)", timeout=15):
                return
        except (BenchError, OSError) as e:
            last = e
        time.sleep(1)
    raise BenchError(f"the guest shell of {instance} does not answer: {last}")
