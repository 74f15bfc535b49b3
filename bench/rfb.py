"""A minimal RFB 3.8 (VNC) client for bench/console.py.

What it does: the 3.8 handshake with security type None, a shared
ClientInit, SetPixelFormat (32 bpp true colour, so every path decodes the
same bytes), SetEncodings (Raw plus the DesktopSize and LED-state
pseudo-encodings), FramebufferUpdateRequest, KeyEvent, and parsing of every
server message QEMU sends with those encodings. Raw only, on every path, so
the bytes on the wire are the same whatever carries them.

It runs over any transport with recv() (next chunk of bytes, EOFError on
close), send(bytes) and settimeout(): a plain unix or TCP socket, or a
WebSocket (bench/wsclient.py).
"""

import socket
import struct
import time

ENC_RAW = 0
ENC_COPYRECT = 1
ENC_DESKTOP_SIZE = -223
ENC_CURSOR = -239
ENC_POINTER_TYPE_CHANGE = -257
ENC_QEMU_EXT_KEY = -258
ENC_LED_STATE = -261

MSG_FBU, MSG_COLOURMAP, MSG_BELL, MSG_CUT_TEXT, MSG_QEMU = 0, 1, 2, 3, 255

KEY_X = 0x78
KEY_BACKSPACE = 0xFF08
KEY_RETURN = 0xFF0D

# 32 bpp, depth 24, little endian, true colour, 8 bits per channel.
PIXEL_FORMAT = struct.pack("!BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


class RfbError(Exception):
    pass


class Reader:
    """Buffered reads of exact sizes over a transport's recv()."""

    def __init__(self, transport):
        self.t = transport
        self.buf = bytearray()
        self.pos = 0
        self.consumed = 0  # RFB bytes consumed, the same count on every path

    def available(self):
        return len(self.buf) - self.pos

    def fill_once(self, timeout=None):
        """Reads one chunk; False if nothing came within `timeout` seconds.
        Only call it between messages (a timeout mid-message is not resumable
        at this layer)."""
        if timeout is not None:
            self.t.settimeout(timeout)
        try:
            chunk = self.t.recv()
        except (socket.timeout, TimeoutError):
            return False
        finally:
            if timeout is not None:
                self.t.settimeout(30)
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk
        return True

    def need(self, n):
        while len(self.buf) - self.pos < n:
            if self.pos:
                del self.buf[:self.pos]
                self.pos = 0
            self.buf += self.t.recv()

    def read(self, n):
        self.need(n)
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        self.consumed += n
        return out

    def skip(self, n):
        self.consumed += n
        avail = len(self.buf) - self.pos
        if n <= avail:
            self.pos += n
            return
        n -= avail
        self.buf.clear()
        self.pos = 0
        while n > 0:
            chunk = self.t.recv()
            if len(chunk) <= n:
                n -= len(chunk)
            else:
                self.buf += memoryview(chunk)[n:]
                n = 0


class Update:
    """One FramebufferUpdate: its rectangles and whether any pixel changed
    compared with the client's copy of the screen (when tracking)."""
    __slots__ = ("rects", "pixels", "changed", "changed_rows", "led", "t_header", "t_done")

    def __init__(self):
        self.rects = 0
        self.pixels = 0
        self.changed = False
        self.changed_rows = []  # (y0, y1) of rects with changed pixels
        self.led = False  # carried an LED-state pseudo-rectangle
        self.t_header = 0.0
        self.t_done = 0.0


class RfbClient:
    def __init__(self, transport, shared=True):
        self.t = transport
        self.r = Reader(transport)
        self.fb = None  # bytearray copy of the screen, when tracking
        self._handshake(shared)

    def _handshake(self, shared):
        version = self.r.read(12)
        if not version.startswith(b"RFB 003."):
            raise RfbError(f"not an RFB server: {version!r}")
        self.t.send(b"RFB 003.008\n")
        n = self.r.read(1)[0]
        if n == 0:
            ln = struct.unpack("!I", self.r.read(4))[0]
            raise RfbError("server refused: " + self.r.read(ln).decode(errors="replace"))
        types = self.r.read(n)
        if 1 not in types:
            raise RfbError(f"security type None not offered (offered {list(types)})")
        self.t.send(b"\x01")
        if struct.unpack("!I", self.r.read(4))[0] != 0:
            ln = struct.unpack("!I", self.r.read(4))[0]
            raise RfbError("security failed: " + self.r.read(ln).decode(errors="replace"))
        self.t.send(b"\x01" if shared else b"\x00")
        w, h = struct.unpack("!HH", self.r.read(4))
        self.r.read(16)  # the server's pixel format; we set ours below
        ln = struct.unpack("!I", self.r.read(4))[0]
        self.name = self.r.read(ln).decode(errors="replace")
        self.width, self.height = w, h
        self.t.send(b"\x00\x00\x00\x00" + PIXEL_FORMAT)
        self.bpp = 4

    # ---- client messages ------------------------------------------------

    def set_encodings(self, encodings):
        self.t.send(struct.pack(f"!BxH{len(encodings)}i", 2, len(encodings), *encodings))

    def request(self, incremental=True, x=0, y=0, w=None, h=None):
        self.t.send(self._request_msg(incremental, x, y, w, h))

    def _request_msg(self, incremental=True, x=0, y=0, w=None, h=None):
        return struct.pack("!BBHHHH", 3, 1 if incremental else 0, x, y,
                           self.width if w is None else w, self.height if h is None else h)

    def key(self, keysym):
        """Press and release, in one send (one WebSocket frame)."""
        self.t.send(struct.pack("!BBxxI", 4, 1, keysym) + struct.pack("!BBxxI", 4, 0, keysym))

    # ---- server messages ------------------------------------------------

    def track(self):
        """Keep a copy of the screen from now on, to tell real changes."""
        self.fb = bytearray(self.width * self.height * self.bpp)

    def read_message(self, pipeline=True):
        """Reads one server message. For a FramebufferUpdate, sends the next
        incremental request as soon as the header is in (pipelining, as
        noVNC does once per update) and returns an Update; else None."""
        mtype = self.r.read(1)[0]
        if mtype == MSG_FBU:
            up = Update()
            up.t_header = time.monotonic()
            nrects = struct.unpack("!xH", self.r.read(3))[0]
            if pipeline:
                self.request(True)
            for _ in range(nrects):
                self._rect(up)
            up.rects = nrects
            up.t_done = time.monotonic()
            return up
        if mtype == MSG_COLOURMAP:
            _, n = struct.unpack("!xHH", self.r.read(5))
            self.r.skip(6 * n)
        elif mtype == MSG_BELL:
            pass
        elif mtype == MSG_CUT_TEXT:
            ln = struct.unpack("!xxxI", self.r.read(7))[0]
            self.r.skip(ln)
        else:
            raise RfbError(f"unexpected server message type {mtype}")
        return None

    def _rect(self, up):
        x, y, w, h, enc = struct.unpack("!HHHHi", self.r.read(12))
        if enc == ENC_RAW:
            n = w * h * self.bpp
            up.pixels += w * h
            if self.fb is None:
                self.r.skip(n)
                return
            data = self.r.read(n)
            row = w * self.bpp
            changed = False
            for i in range(h):
                off = ((y + i) * self.width + x) * self.bpp
                src = data[i * row:(i + 1) * row]
                if self.fb[off:off + row] != src:
                    self.fb[off:off + row] = src
                    changed = True
            if changed:
                up.changed = True
                up.changed_rows.append((y, y + h))
        elif enc == ENC_COPYRECT:
            self.r.skip(4)
            up.changed = True
        elif enc == ENC_DESKTOP_SIZE:
            self.width, self.height = w, h
            if self.fb is not None:
                self.track()
            up.changed = True
        elif enc == ENC_LED_STATE:
            self.r.skip(1)
            up.led = True
        elif enc == ENC_CURSOR:
            self.r.skip(w * h * self.bpp + (w + 7) // 8 * h)
        elif enc in (ENC_POINTER_TYPE_CHANGE, ENC_QEMU_EXT_KEY):
            pass
        else:
            raise RfbError(f"unexpected rectangle encoding {enc}")

    def poll(self, timeout):
        """The next message if one starts within `timeout` seconds, else
        False. Returns what read_message returns (an Update or None)."""
        if self.r.available() == 0 and not self.r.fill_once(timeout):
            return False
        return self.read_message()

    def close(self):
        self.t.close()
