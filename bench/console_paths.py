"""The measurements of bench/console.py: how each path connects, the
throughput loop and the latency loops. Python 3 standard library only."""

import json
import os
import time
import urllib.parse

import rfb
from benchlib import BenchError
from wsclient import SocketTransport, WsError, WsTransport

PATHS = ["direct", "vireo", "peer_direct", "peer_wss", "peer_ws", "peer_qemu_ws"]
PATH_INFO = {
    "direct": "RFB client on the Vireo VM's VNC unix socket (baseline)",
    "vireo": "POST /1.0/instances/NAME/console {type: vga}, WSS to vireod's HTTPS port "
             "/1.0/operations/ID/websocket?secret=S, relayed by vireod to the VNC unix socket",
    "peer_direct": "RFB client on the peer VM's VNC TCP port 127.0.0.1 (peer baseline)",
    "peer_wss": "wss to Debian's websockify (--cert, self-signed) proxying to the peer's VNC "
                "TCP port",
    "peer_ws": "plain ws to the same websockify",
    "peer_qemu_ws": "plain ws to QEMU's own VNC WebSocket listener on the peer "
                    "(-vnc ...,websocket=)",
}
VM_OF = {"direct": "vireo", "vireo": "vireo", "peer_direct": "peer", "peer_wss": "peer",
         "peer_ws": "peer", "peer_qemu_ws": "peer"}
ENCODINGS = [rfb.ENC_RAW, rfb.ENC_DESKTOP_SIZE]
LATENCY_ENCODINGS = [rfb.ENC_RAW, rfb.ENC_DESKTOP_SIZE, rfb.ENC_LED_STATE]
CHUNK = 10  # latency samples per connection before moving to the next path
KEY_TIMEOUT = 5.0
QUIET = 0.25
PROBE_GAP = 0.01


def cpu_ticks(pid):
    """utime + stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Measurer:
    def __init__(self, ctx, paths, log):
        self.ctx = ctx
        self.paths = paths
        self.log = log
        self.typed = {"vireo": False, "peer": False}  # an 'x' is on the screen
        self.ciphers = {}

    # ---- connecting -------------------------------------------------------

    def transport(self, path):
        ctx = self.ctx
        if path == "direct":
            return SocketTransport.unix(ctx.vnc_socket)
        if path == "vireo":
            # What the web UI does: a ticket over the API, then the WebSocket.
            status, raw = ctx.vireod.api.request(
                "POST", f"/1.0/instances/{ctx.vm_name}/console", {"type": "vga"})
            doc = json.loads(raw) if raw else {}
            if status != 202 or "secret" not in doc:
                raise BenchError(f"POST console: HTTP {status}: {doc.get('error', doc)}")
            op = doc["operation"]
            return WsTransport("127.0.0.1", ctx.https_port,
                               f"{op}/websocket?secret={urllib.parse.quote(doc['secret'], safe='')}",
                               tls=True)
        if path == "peer_direct":
            return SocketTransport.tcp("127.0.0.1", ctx.peer_vnc_port)
        if path == "peer_wss":
            return WsTransport("127.0.0.1", ctx.wsfy_port, "/", tls=True)
        if path == "peer_ws":
            return WsTransport("127.0.0.1", ctx.wsfy_port, "/", tls=False)
        if path == "peer_qemu_ws":
            return WsTransport("127.0.0.1", ctx.peer_qemu_ws_port, "/", tls=False,
                               protocols="binary")
        raise BenchError(f"unknown path {path}")

    def connect(self, path, encodings):
        t = self.transport(path)
        if isinstance(t, WsTransport) and hasattr(t.sock, "cipher") and path not in self.ciphers:
            c = t.sock.cipher()
            self.ciphers[path] = f"{c[1]} {c[0]}" if c else None
        c = rfb.RfbClient(t)
        c.set_encodings(encodings)
        return c

    # ---- throughput --------------------------------------------------------

    def throughput(self, rounds, duration, warmup, start_cmd, stop_cmd):
        out = {p: {"fps": [], "bytes_per_s": [], "frames": [], "seconds": [],
                   "client_cpu_s": []} for p in self.paths}
        groups = [[p for p in self.paths if VM_OF[p] == vm] for vm in ("vireo", "peer")]
        groups = [g for g in groups if g]
        for r in range(rounds):
            # Alternate the order inside each VM's group from round to round.
            for g in (groups if r % 2 == 0 else groups[::-1]):
                vm = VM_OF[g[0]]
                shell = self.shell(vm)
                shell.run(start_cmd)
                time.sleep(1.0)
                k = r % len(g)
                for p in g[k:] + g[:k]:
                    if "error" in out[p]:
                        continue
                    try:
                        res = self.throughput_one(p, duration, warmup)
                    except (BenchError, WsError, rfb.RfbError, OSError, EOFError) as e:
                        out[p]["error"] = f"{type(e).__name__}: {e}"
                        self.log(f"{p}: {out[p]['error']}")
                        continue
                    for key, v in res.items():
                        out[p].setdefault(key, []).append(v)
                    self.log(f"round {r + 1} {p:13s} {res['fps']:.2f} fps "
                             f"{res['bytes_per_s'] / 1e6:.2f} MB/s")
                shell.run(stop_cmd)
        for p, c in self.ciphers.items():
            out[p]["cipher"] = c
        return out

    def throughput_one(self, path, duration, warmup):
        c = self.connect(path, ENCODINGS)
        vireod_pid = self.ctx.vireod.proc.pid if path == "vireo" else None
        try:
            c.request(False)
            t_warm = time.monotonic() + warmup
            while time.monotonic() < t_warm:
                c.read_message()
            t0 = time.monotonic()
            cpu0 = time.process_time()
            d0 = cpu_ticks(vireod_pid) if vireod_pid else None
            b0 = c.r.consumed
            frames = 0
            while True:
                before = c.r.consumed
                up = c.read_message()
                if up is None:
                    continue
                if up.t_header >= t0 + duration:
                    t_end, b_end = up.t_header, before
                    break
                if up.pixels:
                    frames += 1
            secs = t_end - t0
            res = {"fps": frames / secs, "bytes_per_s": (b_end - b0) / secs, "frames": frames,
                   "seconds": round(secs, 3),
                   "client_cpu_s": round(time.process_time() - cpu0, 3)}
            if d0 is not None:
                d1 = cpu_ticks(vireod_pid)
                res["vireod_cpu_s"] = round(d1 - d0, 2)
            return res
        finally:
            c.close()

    def shell(self, vm):
        return self.ctx.vireo_serial if vm == "vireo" else self.ctx.peer.serial

    # ---- latency -----------------------------------------------------------

    def latency(self, samples, probe_samples):
        out = {p: {"key_ms": [], "probe_ms": [], "key_timeouts": 0} for p in self.paths}
        want = {p: samples for p in self.paths}
        rnd = 0
        while any(len(out[p]["key_ms"]) + out[p]["key_timeouts"] < want[p] and
                  "error" not in out[p] for p in self.paths):
            k = rnd % len(self.paths)
            for p in self.paths[k:] + self.paths[:k]:
                o = out[p]
                left = want[p] - len(o["key_ms"]) - o["key_timeouts"]
                if left <= 0 or "error" in o:
                    continue
                n = min(CHUNK, left)
                nprobe = min(probe_samples - len(o["probe_ms"]),
                             -(-probe_samples * n // samples))
                try:
                    self.latency_chunk(p, n, max(0, nprobe), o)
                except (BenchError, WsError, rfb.RfbError, OSError, EOFError) as e:
                    o["error"] = f"{type(e).__name__}: {e}"
                    self.log(f"{p}: {o['error']}")
            rnd += 1
        for p in self.paths:
            k, pr = sorted(out[p]["key_ms"]), sorted(out[p]["probe_ms"])
            if k:
                self.log(f"latency {p:13s} key->pixels median {k[len(k) // 2]:.2f} ms, "
                         f"probe rtt median {pr[len(pr) // 2] if pr else float('nan'):.3f} ms")
        return out

    def latency_chunk(self, path, n, nprobe, o):
        c = self.connect(path, LATENCY_ENCODINGS)
        try:
            c.track()
            c.request(False)
            self.quiet(c, 0.5)
            vm = VM_OF[path]
            for _ in range(n):
                self.quiet(c, QUIET)
                key = rfb.KEY_BACKSPACE if self.typed[vm] else rfb.KEY_X
                self.typed[vm] = not self.typed[vm]
                t0 = time.monotonic()
                c.key(key)
                while True:
                    up = c.poll(max(0.001, t0 + KEY_TIMEOUT - time.monotonic()))
                    if up is False:
                        o["key_timeouts"] += 1
                        break
                    if up and up.changed:
                        o["key_ms"].append((up.t_done - t0) * 1000.0)
                        break
            self.quiet(c, QUIET)
            for _ in range(nprobe):
                # Spaced out like key presses: every process on the path has
                # gone back to sleep, as it would between real key presses.
                time.sleep(PROBE_GAP)
                t0 = time.monotonic()
                c.set_encodings(LATENCY_ENCODINGS)
                while True:
                    up = c.poll(KEY_TIMEOUT)
                    if up is False:
                        raise BenchError("no LED-state answer to SetEncodings (probe)")
                    if up and up.led:
                        o["probe_ms"].append((up.t_done - t0) * 1000.0)
                        break
        finally:
            c.close()

    @staticmethod
    def quiet(c, secs, limit=10.0):
        """Reads until no message came for `secs` (the screen is still)."""
        deadline = time.monotonic() + limit
        while c.poll(secs) is not False:
            if time.monotonic() > deadline:
                raise BenchError("the screen never went quiet (is the workload stopped?)")
