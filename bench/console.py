#!/usr/bin/env python3
"""Console benchmark (issue 4): Vireo's graphical console path against a
direct VNC connection and against QEMU VNC behind Debian's websockify.

Paths (one RFB client, bench/rfb.py, Raw encoding on every path):
  direct        the Vireo VM's VNC unix socket, straight (baseline)
  vireo         what a browser does: POST /1.0/instances/NAME/console
                {"type":"vga"}, then WSS to vireod's HTTPS port,
                /1.0/operations/ID/websocket?secret=S, relayed to that socket
  peer_direct   a second, identical VM (the Vireo VM's QEMU command line,
                VNC on 127.0.0.1 TCP), straight (the peer's baseline)
  peer_wss      websockify --cert (wss) in front of the peer's VNC port
  peer_ws       the same websockify, plain ws
  peer_qemu_ws  QEMU's own VNC WebSocket listener (plain ws) on the peer

Workload: the guest redraws its VGA text console continuously (`dmesg` in a
loop into /dev/tty1). Throughput: FramebufferUpdates per second and RFB
bytes per second with an incremental request sent as soon as each update's
header arrives, BENCH_DURATION seconds per path after a warm-up, paths
alternated, BENCH_ROUNDS rounds; only the measured VM runs the workload.
Latency (workload stopped): a key press (KeyEvent down+up, 'x' then
BackSpace) echoed by a shell on tty1, until the first update with changed
pixels; and a probe round trip (SetEncodings answered at once by QEMU with
an LED-state update) that isolates the path's own cost from QEMU's refresh
timer. Writes bench/results/console.json and prints ratios.

Settings (environment): BENCH_DURATION (10), BENCH_ROUNDS (6), BENCH_WARMUP
(2), BENCH_LATENCY_SAMPLES (60 per path), BENCH_PROBE_SAMPLES (200 per path),
BENCH_SKIP (comma list of paths), BENCH_MEMORY_MIB (256), VIREO_BUILD,
VIREO_GUEST_KIT, BENCH_OUT.
"""

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BenchError, Vireod, log, median, percentile  # noqa: E402
from benchlib import wait_file_marker  # noqa: E402
from console_setup import (GUEST_PREPARE, GUEST_WORKLOAD_START, GUEST_WORKLOAD_STOP,  # noqa: E402
                           WORKLOAD, PeerVm, SerialShell, Websockify, cert_info, free_port,
                           peer_argv, self_signed_cert, wait_port)
from console_paths import PATHS, PATH_INFO, Measurer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = os.environ
DURATION = float(ENV.get("BENCH_DURATION", "10"))
ROUNDS = int(ENV.get("BENCH_ROUNDS", "6"))
WARMUP = float(ENV.get("BENCH_WARMUP", "2"))
LAT_SAMPLES = int(ENV.get("BENCH_LATENCY_SAMPLES", "60"))
PROBE_SAMPLES = int(ENV.get("BENCH_PROBE_SAMPLES", "200"))
MEMORY_MIB = int(ENV.get("BENCH_MEMORY_MIB", "256"))
SKIP = set(filter(None, ENV.get("BENCH_SKIP", "").split(",")))
BUILD = ENV.get("VIREO_BUILD", os.path.join(ROOT, "build-bench"))
KIT = ENV.get("VIREO_GUEST_KIT", os.path.expanduser("~/.cache/vireo/guest-kit"))
OUT = ENV.get("BENCH_OUT", os.path.join(ROOT, "bench", "results", "console.json"))
# vmlinuz, not vmlinux: booted via PVH the ELF kernel shows nothing on VGA.
KERNEL_NAME = "vmlinuz"
CMDLINE = "console=tty0 console=ttyS0 consoleblank=0"
BOOT_TIMEOUT = 300
VM_NAME = "consolebench"
GOAL_THROUGHPUT_RATIO = 0.95
GOAL_ADDED_LATENCY_MS = 2.0


def copy_public(src, dst):
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    return dst


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        return out.strip().splitlines()[0] if out.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def host_info():
    model = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "accel": "tcg", "loadavg_at_start": os.getloadavg(),
            "qemu": first_line(["qemu-system-x86_64", "--version"]),
            "websockify": first_line(["dpkg-query", "-W", "-f", "${Version}", "websockify"]),
            "python": platform.python_version()}


class Ctx:
    pass


def start_vireo_vm(ctx):
    api = ctx.vireod.api
    api.call_wait("POST", "/1.0/instances", {
        "name": VM_NAME, "cpus": 1, "memory": f"{MEMORY_MIB}M", "nics": 0,
        "kernel": ctx.kernel, "initrd": ctx.initrd, "cmdline": CMDLINE})
    inst = api.json("GET", f"/1.0/instances/{VM_NAME}")["metadata"]
    run_dir = os.path.join(ctx.vireod.data_dir, "run", inst["id"])
    console = os.path.join(run_dir, "console.log")
    t0 = time.monotonic()
    api.call_wait("PUT", f"/1.0/instances/{VM_NAME}/state", {"action": "start"})
    wait_file_marker(console, 0, t0, BOOT_TIMEOUT)
    pid = api.json("GET", f"/1.0/instances/{VM_NAME}/state")["metadata"].get("pid")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
    ctx.vireo_argv = argv
    ctx.vm_name = VM_NAME
    ctx.vnc_socket = os.path.join(run_dir, "vnc.sock")
    ctx.vireo_serial = SerialShell(os.path.join(run_dir, "serial.sock"))
    if not os.path.exists(ctx.vnc_socket):
        raise BenchError(f"no VNC socket at {ctx.vnc_socket}")


def setup(ctx, result):
    for f in (KERNEL_NAME, "initrd.img"):
        if not os.path.isfile(os.path.join(KIT, f)):
            raise BenchError(f"{KIT}/{f} missing: run scripts/guest-kit")
    ctx.kernel = copy_public(os.path.join(KIT, KERNEL_NAME), os.path.join(ctx.workdir, "kernel"))
    ctx.initrd = copy_public(os.path.join(KIT, "initrd.img"),
                             os.path.join(ctx.workdir, "initrd.img"))
    ctx.https_port = free_port()
    ctx.vireod = Vireod(os.path.join(BUILD, "vireod"), ctx.workdir, "console", "tcg",
                        ["--default-network", "none"], https=f"127.0.0.1:{ctx.https_port}")
    ctx.cleanup.append(ctx.vireod.stop)
    wait_port(ctx.https_port)
    log("booting the Vireo VM")
    start_vireo_vm(ctx)

    peer_paths = {"peer_direct", "peer_wss", "peer_ws", "peer_qemu_ws"} - SKIP
    if peer_paths:
        ctx.peer_vnc_port = free_port()
        while ctx.peer_vnc_port < 5900:
            ctx.peer_vnc_port = free_port()
        ctx.peer_qemu_ws_port = free_port()
        argv, files = peer_argv(ctx.vireo_argv, ctx.vireod.data_dir, ctx.workdir,
                                ctx.peer_vnc_port, ctx.peer_qemu_ws_port)
        log("booting the peer VM (same QEMU command line, VNC on TCP)")
        ctx.peer = PeerVm(argv, files, ctx.workdir)
        ctx.cleanup.append(ctx.peer.stop)
        ctx.peer.wait_up(BOOT_TIMEOUT)
        wait_port(ctx.peer_vnc_port)
        result["peer_argv"] = argv
        cert, key = self_signed_cert(ctx.workdir)
        ctx.wsfy_port = free_port()
        ctx.websockify = Websockify(ctx.wsfy_port, ctx.peer_vnc_port, cert, key, ctx.workdir)
        ctx.cleanup.append(ctx.websockify.stop)
        result["certificates"] = {
            "vireod": cert_info(os.path.join(ctx.vireod.data_dir, "server.crt")),
            "websockify": cert_info(cert)}
    result["vireo_argv"] = ctx.vireo_argv

    ctx.vireo_serial.run(GUEST_PREPARE)
    if getattr(ctx, "peer", None) is not None:
        ctx.peer.serial.run(GUEST_PREPARE)
    time.sleep(1)


def main():
    ctx = Ctx()
    ctx.workdir = tempfile.mkdtemp(prefix="vireo-bench-console.", dir="/var/tmp")
    os.chmod(ctx.workdir, 0o755)
    ctx.cleanup = []
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(),
        # A 1-minute load above 1 at the start means another job shares the
        # 2 cores: the numbers then only indicate.
        "noisy": os.getloadavg()[0] > 1.0,
        "machine_note": "TCG (no usable KVM), 2 cores; see host.loadavg_at_start",
        "settings": {"duration_s": DURATION, "rounds": ROUNDS, "warmup_s": WARMUP,
                     "latency_samples": LAT_SAMPLES, "probe_samples": PROBE_SAMPLES,
                     "memory_mib": MEMORY_MIB, "kernel": KERNEL_NAME, "cmdline": CMDLINE,
                     "workload": WORKLOAD, "encodings": "Raw (+DesktopSize, LED state)",
                     "pixel_format": "32 bpp true colour", "skip": sorted(SKIP)},
        "paths": {p: {"description": PATH_INFO[p]} for p in PATHS if p not in SKIP},
    }
    try:
        setup(ctx, result)
        m = Measurer(ctx, [p for p in PATHS if p not in SKIP], log)
        result["throughput"] = m.throughput(ROUNDS, DURATION, WARMUP,
                                            GUEST_WORKLOAD_START, GUEST_WORKLOAD_STOP)
        result["latency"] = m.latency(LAT_SAMPLES, PROBE_SAMPLES)
        result["host"]["loadavg_at_end"] = os.getloadavg()
        summarize(result)
    finally:
        for fn in reversed(ctx.cleanup):
            try:
                fn()
            except Exception as e:  # keep cleaning up
                log(f"cleanup: {e}")
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print_summary(result)
    print(f"\nwrote {OUT}")


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def summarize(result):
    """Per-path summaries, ratios and goals from the raw samples."""
    tp, lat = result["throughput"], result["latency"]
    for p, row in result["paths"].items():
        t = tp.get(p, {})
        l_ = lat.get(p, {})
        row["fps_median"] = median(t.get("fps", []))
        row["bytes_per_s_median"] = median(t.get("bytes_per_s", []))
        row["key_to_pixels_ms"] = stats(l_.get("key_ms", []))
        row["probe_rtt_ms"] = stats(l_.get("probe_ms", []))
        for k in ("cipher", "error"):
            if k in t or k in l_:
                row[k] = t.get(k) or l_.get(k)

    def paired(a, b, key):
        ra, rb = tp.get(a, {}).get(key, []), tp.get(b, {}).get(key, [])
        rs = [x / y for x, y in zip(ra, rb) if y]
        return round(median(rs), 3) if rs else None

    def added(a, b, key, q):
        x = result["paths"].get(a, {}).get(key, {}) or {}
        y = result["paths"].get(b, {}).get(key, {}) or {}
        if x.get(q) is None or y.get(q) is None:
            return None
        return round(x[q] - y[q], 3)

    ratios = {}
    for a, b in (("vireo", "direct"), ("peer_wss", "peer_direct"), ("peer_ws", "peer_direct"),
                 ("peer_qemu_ws", "peer_direct"), ("vireo", "peer_wss")):
        for key, short in (("fps", "fps"), ("bytes_per_s", "bytes")):
            r = paired(a, b, key)
            if r is not None:
                ratios[f"{a}_over_{b}_{short}"] = r
    result["ratios"] = ratios
    added_ms = {}
    for a, b in (("vireo", "direct"), ("peer_wss", "peer_direct"), ("peer_ws", "peer_direct"),
                 ("peer_qemu_ws", "peer_direct")):
        for key, short in (("key_to_pixels_ms", "key"), ("probe_rtt_ms", "probe")):
            for q in ("median", "p95"):
                v = added(a, b, key, q)
                if v is not None:
                    added_ms[f"{a}_minus_{b}_{short}_{q}"] = v
    result["added_latency_ms"] = added_ms

    goals = {}
    fps_r, bytes_r = ratios.get("vireo_over_direct_fps"), ratios.get("vireo_over_direct_bytes")
    if fps_r is not None and bytes_r is not None:
        worst = min(fps_r, bytes_r)
        goals["throughput_within_5pct"] = {
            "target": f"vireo/direct >= {GOAL_THROUGHPUT_RATIO} (fps and bytes/s)",
            "fps_ratio": fps_r, "bytes_ratio": bytes_r, "pass": worst >= GOAL_THROUGHPUT_RATIO}
    key_added = added_ms.get("vireo_minus_direct_key_median")
    if key_added is not None:
        goals["added_latency_under_2ms"] = {
            "target": f"median key-to-pixels, vireo - direct < {GOAL_ADDED_LATENCY_MS} ms",
            "added_ms": key_added, "pass": key_added < GOAL_ADDED_LATENCY_MS,
            "probe_added_median_ms": added_ms.get("vireo_minus_direct_probe_median"),
            "probe_added_p95_ms": added_ms.get("vireo_minus_direct_probe_p95"),
            "probe_pass": (added_ms.get("vireo_minus_direct_probe_median") or 0)
            < GOAL_ADDED_LATENCY_MS}
    result["goals"] = goals


def stats(values):
    if not values:
        return None
    return {"count": len(values), "median": round(median(values), 3),
            "p95": round(percentile(values, 95), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def print_summary(result):
    lines = ["", "== console benchmark (Raw encoding, TCG" +
             (", noisy shared machine)" if result.get("noisy") else ")")]
    for p, row in result.get("paths", {}).items():
        k = row.get("key_to_pixels_ms") or {}
        pr = row.get("probe_rtt_ms") or {}
        fps = row.get("fps_median")
        bps = row.get("bytes_per_s_median")
        lines.append(
            f"  {p:13s} fps {fps if fps is None else round(fps, 2)!s:>7s}  "
            f"MB/s {bps if bps is None else round(bps / 1e6, 2)!s:>6s}  "
            f"key->pixels median {k.get('median')!s:>8s} p95 {k.get('p95')!s:>8s} ms  "
            f"probe rtt median {pr.get('median')!s:>7s} p95 {pr.get('p95')!s:>7s} ms"
            + (f"  ERROR {row['error']}" if row.get("error") else ""))
    lines.append("  ratios: " + json.dumps(result.get("ratios", {})))
    lines.append("  added latency (ms): " + json.dumps(result.get("added_latency_ms", {})))
    for g, v in result.get("goals", {}).items():
        lines.append(f"  goal {g}: {'PASS' if v.get('pass') else 'FAIL'} {json.dumps(v)}")
    print("\n".join(lines))


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
