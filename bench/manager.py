#!/usr/bin/env python3
"""Vireo manager benchmark (see bench/README.md).

1. Start latency, from the launch request to VIREO-GUEST-UP on the serial
   console, same kernel/initrd/cmdline/memory/accelerator: raw
   qemu-system-x86_64 vs Vireo (PUT /1.0/instances/NAME/state) vs libvirt
   (`virsh create`). Interleaved runs in rotating order; medians and ratios.
2. Control-plane cost with 200 defined instances: GET /1.0/instances under 32
   concurrent clients (bench/api_load.cc) and vireod's RSS; the peer is
   `virsh list --all` against libvirtd with 200 defined domains.

Writes bench/results/manager.json and prints a summary. Settings come from
the environment: BENCH_RUNS (5), BENCH_CLIENTS (32), BENCH_DURATION (10),
BENCH_INSTANCES (200), BENCH_MEMORY_MIB (256), BENCH_KERNEL (vmlinux|vmlinuz),
BENCH_SKIP (comma list of raw,vireo,libvirt,start,control), VIREO_BUILD,
VIREO_GUEST_KIT, BENCH_OUT.
"""

import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from xml.sax.saxutils import escape

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (BenchError, Libvirtd, QemuSpawnWatch, Vireod, closed_loop, log, median,  # noqa: E402
                      read_proc_status, terminate, virsh, wait_file_marker, wait_pipe_marker)
from report import summary  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = os.environ
RUNS = int(ENV.get("BENCH_RUNS", "5"))
CLIENTS = int(ENV.get("BENCH_CLIENTS", "32"))
DURATION = float(ENV.get("BENCH_DURATION", "10"))
INSTANCES = int(ENV.get("BENCH_INSTANCES", "200"))
MEMORY_MIB = int(ENV.get("BENCH_MEMORY_MIB", "256"))
CP_MEMORY_MIB = 64  # defined, never started: size does not matter to a list
CMDLINE = ENV.get("BENCH_CMDLINE", "console=ttyS0 vireo.poweroff=1")
BUILD = ENV.get("VIREO_BUILD", os.path.join(ROOT, "build-bench"))
KIT = ENV.get("VIREO_GUEST_KIT", os.path.expanduser("~/.cache/vireo/guest-kit"))
KERNEL_NAME = ENV.get("BENCH_KERNEL", "vmlinux")
OUT = ENV.get("BENCH_OUT", os.path.join(ROOT, "bench", "results", "manager.json"))
SKIP = set(filter(None, ENV.get("BENCH_SKIP", "").split(",")))
ACCEL = "tcg"
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
BOOT_TIMEOUT = 180
TEMPLATE = os.path.join(ROOT, "bench", "libvirt-domain.xml.in")


class Guest:
    """Kernel and initrd copied into the world-readable work dir, so QEMU
    running as an unprivileged user (libvirt-qemu, vireo-qemu) can read them.
    libvirt gets its own copies: its dynamic ownership chowns them."""

    def __init__(self, workdir):
        src_kernel = os.path.join(KIT, KERNEL_NAME)
        src_initrd = os.path.join(KIT, "initrd.img")
        for f in (src_kernel, src_initrd):
            if not os.path.isfile(f):
                raise BenchError(f"{f} missing: run scripts/guest-kit")
        self.kernel = self._copy(src_kernel, workdir, "kernel")
        self.initrd = self._copy(src_initrd, workdir, "initrd.img")
        self.lv_kernel = self._copy(src_kernel, workdir, "libvirt-kernel")
        self.lv_initrd = self._copy(src_initrd, workdir, "libvirt-initrd.img")

    @staticmethod
    def _copy(src, workdir, name):
        dst = os.path.join(workdir, name)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
        return dst


def domain_xml(name, memory_mib, kernel, initrd, serial_log):
    with open(TEMPLATE) as f:
        text = f.read()
    for key, value in (("NAME", name), ("MEMORY_MIB", str(memory_mib)), ("KERNEL", kernel),
                       ("INITRD", initrd), ("CMDLINE", CMDLINE), ("SERIAL_LOG", serial_log)):
        text = text.replace(f"@{key}@", escape(value, {"'": "&apos;"}))
    return text


# ---- start latency ---------------------------------------------------------

def time_raw(ctx, i):
    argv = [QEMU, "-M", "q35", "-accel", ACCEL, "-cpu", "max", "-smp", "1",
            "-m", str(MEMORY_MIB), "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio", "-kernel", ctx.guest.kernel, "-initrd", ctx.guest.initrd,
            "-append", CMDLINE]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    ctx.spawn_ms = (time.monotonic() - t0) * 1000.0  # fork+exec done
    try:
        ms = wait_pipe_marker(proc.stdout, t0, BOOT_TIMEOUT)
        # The guest powers off right away; drain the pipe so QEMU never blocks.
        deadline = time.monotonic() + 60
        while proc.stdout.read(65536) and time.monotonic() < deadline:
            pass
        proc.wait(timeout=60)
        return ms
    finally:
        terminate(proc, timeout=5)
        proc.stdout.close()


def time_vireo(ctx, i):
    api = ctx.vireod.api
    name = f"sl-{i}"
    api.call_wait("POST", "/1.0/instances", {
        "name": name, "cpus": 1, "memory": f"{MEMORY_MIB}M", "kernel": ctx.guest.kernel,
        "initrd": ctx.guest.initrd, "cmdline": CMDLINE})
    try:
        inst = api.json("GET", f"/1.0/instances/{name}")["metadata"]
        console = os.path.join(ctx.vireod.data_dir, "run", inst["id"], "console.log")
        offset = os.path.getsize(console) if os.path.exists(console) else 0
        t0 = time.monotonic()
        watch = QemuSpawnWatch(name, t0)
        op = api.json("PUT", f"/1.0/instances/{name}/state", {"action": "start"})

        def failed():
            if op.get("type") != "async":
                return None
            md = api.json("GET", op["operation"])["metadata"]
            return f"start failed: {md.get('err')}" if md.get("status") == "Failure" else None

        ms = wait_file_marker(console, offset, t0, BOOT_TIMEOUT, failed, watch)
        ctx.spawn_ms = watch.spawn_ms
        wait_until(lambda: api.json("GET", f"/1.0/instances/{name}/state")["metadata"]
                   .get("state", "").lower() in ("stopped", "error"), 60)
        return ms
    finally:
        api.call_wait("DELETE", f"/1.0/instances/{name}?force=1")


def time_libvirt(ctx, i):
    name = f"vireo-bench-sl-{i}"
    serial = os.path.join(ctx.workdir, f"{name}.serial.log")
    xml_path = os.path.join(ctx.workdir, f"{name}.xml")
    with open(xml_path, "w") as f:
        f.write(domain_xml(name, MEMORY_MIB, ctx.guest.lv_kernel, ctx.guest.lv_initrd, serial))
    t0 = time.monotonic()
    watch = QemuSpawnWatch(name, t0)
    proc = subprocess.Popen(["virsh", "-c", "qemu:///system", "create", xml_path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

    def failed():
        if proc.poll() not in (None, 0):
            return f"virsh create failed: {proc.stderr.read().strip()}"
        return None

    try:
        ms = wait_file_marker(serial, 0, t0, BOOT_TIMEOUT, failed, watch)
        ctx.spawn_ms = watch.spawn_ms
        proc.wait(timeout=60)
        wait_until(lambda: virsh("domstate", name, check=False).returncode != 0, 60)
        return ms
    finally:
        terminate(proc, timeout=5)
        if virsh("domstate", name, check=False).returncode == 0:
            virsh("destroy", name, check=False)


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"condition not met within {timeout}s")
        time.sleep(interval)


def start_latency(ctx):
    kinds = [k for k in ("raw", "vireo", "libvirt") if k in ctx.available]
    timers = {"raw": time_raw, "vireo": time_vireo, "libvirt": time_libvirt}
    samples = {k: [] for k in kinds}
    spawn = {k: [] for k in kinds}
    errors = {}
    # One unmeasured run each: page cache, libvirt's capability cache.
    for k in kinds:
        try:
            log(f"warm-up {k}: {timers[k](ctx, 'w'):.0f} ms")
        except BenchError as e:
            errors[k] = str(e)
            log(f"{k} failed in warm-up: {e}")
    kinds = [k for k in kinds if k not in errors]
    for i in range(RUNS):
        order = kinds[i % len(kinds):] + kinds[:i % len(kinds)] if kinds else []
        for k in order:
            if k in errors:
                continue
            try:
                ctx.spawn_ms = None
                ms = timers[k](ctx, i)
                samples[k].append(round(ms, 1))
                if ctx.spawn_ms is not None:
                    spawn[k].append(round(ctx.spawn_ms, 1))
                log(f"run {i + 1}/{RUNS} {k}: {ms:.0f} ms")
            except BenchError as e:
                errors[k] = f"run {i + 1}: {e}"
                log(f"{k} failed: {e}")
    res = {"runs": RUNS, "warmup_runs": 1, "kernel": KERNEL_NAME, "cmdline": CMDLINE,
           "memory_mib": MEMORY_MIB, "accel": ACCEL, "cpu_model": "max"}
    for k in ("raw", "vireo", "libvirt"):
        res[f"{k}_ms"] = samples.get(k, [])
    med = {k: median(samples[k]) for k in samples if samples[k]}
    res["medians"] = med
    res["spawn_ms"] = spawn
    res["spawn_medians"] = {k: median(v) for k, v in spawn.items() if v}
    # Under TCG on a shared host the boot's own noise dwarfs the manager's
    # overhead: publish the spread so overhead_ms can be read against it.
    res["spread"] = {k: {"min": min(v), "max": max(v),
                         "stdev": round(statistics.stdev(v), 1) if len(v) > 1 else None}
                     for k, v in samples.items() if v}
    ratios = {}
    if "vireo" in med and "raw" in med:
        ratios["vireo_over_raw"] = round(med["vireo"] / med["raw"], 3)
        res["overhead_ms"] = round(med["vireo"] - med["raw"], 1)
    if "vireo" in med and "libvirt" in med:
        ratios["vireo_over_libvirt"] = round(med["vireo"] / med["libvirt"], 3)
    if "libvirt" in med and "raw" in med:
        ratios["libvirt_over_raw"] = round(med["libvirt"] / med["raw"], 3)
        res["libvirt_overhead_ms"] = round(med["libvirt"] - med["raw"], 1)
    res["ratios"] = ratios
    res["goals"] = {
        "overhead_under_50ms": res["overhead_ms"] < 50 if "overhead_ms" in res else None,
        "faster_than_libvirt": (med["vireo"] < med["libvirt"]
                                if "vireo" in med and "libvirt" in med else None),
    }
    if errors:
        res["errors"] = errors
    return res


# ---- control plane ---------------------------------------------------------

def vireo_control_plane(ctx):
    vd = Vireod(os.path.join(BUILD, "vireod"), ctx.workdir, "cp", ACCEL)
    ctx.cleanup.append(vd.stop)
    t0 = time.monotonic()
    for i in range(INSTANCES):
        vd.api.call_wait("POST", "/1.0/instances", {
            "name": f"cp-{i:03d}", "cpus": 1, "memory": f"{CP_MEMORY_MIB}M",
            "kernel": ctx.guest.kernel, "initrd": ctx.guest.initrd, "cmdline": CMDLINE})
    create_s = time.monotonic() - t0
    listed = len(vd.api.json("GET", "/1.0/instances")["metadata"])
    if listed != INSTANCES:
        raise BenchError(f"vireod lists {listed} instances, expected {INSTANCES}")
    res = {"instances": INSTANCES, "create_all_s": round(create_s, 2),
           "rss_idle_kib": vd.rss().get("VmRSS")}
    load = os.path.join(BUILD, "vireo_bench_api")
    for key, path in (("list", "/1.0/instances"), ("list_recursion1", "/1.0/instances?recursion=1")):
        r = subprocess.run([load, "--socket", vd.sock, "--path", path, "--clients", str(CLIENTS),
                            "--duration", str(DURATION)], capture_output=True, text=True,
                           timeout=DURATION * 3 + 60)
        if r.returncode != 0:
            raise BenchError(f"vireo_bench_api {path}: {r.stderr.strip()[:300]}")
        res[key] = json.loads(r.stdout.strip().splitlines()[-1])
        log(f"vireo GET {path}: p50 {res[key]['p50_ms']:.2f} ms, p99 "
            f"{res[key]['p99_ms']:.2f} ms, {res[key]['throughput_rps']:.0f} req/s")
    st = vd.rss()
    res["rss_kib"] = st.get("VmRSS")
    res["rss_peak_kib"] = st.get("VmHWM")
    res["rss_mib"] = round(st.get("VmRSS", 0) / 1024, 1)
    vd.stop()
    return res


def libvirt_control_plane(ctx):
    names = [f"vireo-bench-cp-{i:03d}" for i in range(INSTANCES)]
    xml_dir = os.path.join(ctx.workdir, "cp-xml")
    os.makedirs(xml_dir, exist_ok=True)
    paths = []
    for n in names:
        p = os.path.join(xml_dir, f"{n}.xml")
        with open(p, "w") as f:
            f.write(domain_xml(n, CP_MEMORY_MIB, ctx.guest.lv_kernel, ctx.guest.lv_initrd,
                               os.path.join(ctx.workdir, f"{n}.serial.log")))
        paths.append(p)

    def undefine():
        for chunk in range(0, len(names), 50):
            virsh("; ".join(f"undefine {n}" for n in names[chunk:chunk + 50]), check=False)

    ctx.cleanup.append(undefine)
    t0 = time.monotonic()
    for chunk in range(0, len(paths), 50):  # one virsh connection per 50 defines
        virsh("; ".join(f"define {p}" for p in paths[chunk:chunk + 50]))
    create_s = time.monotonic() - t0
    listed = virsh("list", "--all", "--name").stdout.split()
    if sum(1 for n in listed if n.startswith("vireo-bench-cp-")) != INSTANCES:
        raise BenchError("libvirt does not list all defined domains")
    res = {"instances": INSTANCES, "define_all_s": round(create_s, 2),
           "rss_idle_kib": read_proc_status(ctx.libvirtd.pid()).get("VmRSS")}

    def spawn_worker():
        def call():
            r = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if r.returncode != 0:
                raise BenchError(f"virsh list exited {r.returncode}")
        return call, lambda: None

    def shell_worker():
        proc = subprocess.Popen(["virsh", "-c", "qemu:///system"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1)

        def call():
            proc.stdin.write("list --all\necho __VB_END__\n")
            proc.stdin.flush()
            while True:
                line = proc.stdout.readline()
                if not line:
                    raise BenchError("virsh shell exited")
                if line.strip() == "__VB_END__":
                    return

        def close():
            try:
                proc.stdin.close()
            except OSError:
                pass
            terminate(proc, timeout=5)
        call()  # connection + banner, not measured
        return call, close

    for key, maker, what in (("list_spawn", spawn_worker, "a new `virsh list --all` per request"),
                             ("list_shell", shell_worker,
                              "`list --all` in one long-lived virsh shell per client")):
        r = closed_loop(CLIENTS, DURATION, maker)
        r["method"] = what
        res[key] = r
        log(f"libvirt {key}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
            f"{r['throughput_rps']:.0f} req/s")
    st = read_proc_status(ctx.libvirtd.pid())
    res["rss_kib"] = st.get("VmRSS")
    res["rss_peak_kib"] = st.get("VmHWM")
    res["rss_mib"] = round(st.get("VmRSS", 0) / 1024, 1)
    undefine()
    ctx.cleanup.remove(undefine)
    return res


def control_plane(ctx):
    res = {"clients": CLIENTS, "duration_s": DURATION, "instances": INSTANCES}
    for key, fn in (("vireo", vireo_control_plane), ("libvirt", libvirt_control_plane)):
        if key not in ctx.available:
            res[key] = {"error": ctx.unavailable.get(key, "skipped")}
            continue
        try:
            res[key] = fn(ctx)
        except (BenchError, OSError, subprocess.SubprocessError, ValueError) as e:
            res[key] = {"error": str(e)}
            log(f"control plane {key} failed: {e}")
    v = res["vireo"]
    res["goals"] = {
        "p99_under_10ms": v["list"]["p99_ms"] < 10 if "list" in v else None,
        "p99_under_10ms_recursion1": (v["list_recursion1"]["p99_ms"] < 10
                                      if "list_recursion1" in v else None),
        "rss_under_40mib": v["rss_mib"] < 40 if "rss_mib" in v else None,
    }
    return res


# ---- driver ----------------------------------------------------------------

class Ctx:
    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="vireo-bench.", dir="/var/tmp")
        os.chmod(self.workdir, 0o755)
        self.cleanup = []
        self.available = set()
        self.unavailable = {}
        self.guest = None
        self.spawn_ms = None  # set by each start-latency timer
        self.vireod = None
        self.libvirtd = None


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        return out.strip().splitlines()[0] if out.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def host_info(ctx):
    model = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info = {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "accel": ACCEL, "loadavg_at_start": os.getloadavg(),
            "qemu": first_line([QEMU, "--version"]),
            "libvirt": first_line(["/usr/sbin/libvirtd", "--version"])}
    if ctx.vireod is not None:
        env = ctx.vireod.info.get("environment", {})
        info["vireo_accelerator"] = env.get("accelerator")
        info["vireo_accelerator_reason"] = env.get("accelerator_reason")
        info["vireo_version"] = ctx.vireod.info.get("version")
    return info


def setup(ctx):
    ctx.guest = Guest(ctx.workdir)
    for k in ("raw", "vireo", "libvirt", "control"):
        if k in SKIP:
            ctx.unavailable[k] = "skipped (BENCH_SKIP)"
    if "raw" not in SKIP:
        ctx.available.add("raw")
    if "vireo" not in SKIP:
        try:
            for b in ("vireod", "vireo_bench_api"):
                if not os.access(os.path.join(BUILD, b), os.X_OK):
                    raise BenchError(f"{BUILD}/{b} not built (ninja -C {BUILD} vireod "
                                     "vireo_bench_api)")
            ctx.vireod = Vireod(os.path.join(BUILD, "vireod"), ctx.workdir, "sl", ACCEL)
            ctx.cleanup.append(ctx.vireod.stop)
            ctx.available.add("vireo")
        except (BenchError, OSError) as e:
            ctx.unavailable["vireo"] = str(e)
            log(f"vireo unavailable: {e}")
    if "libvirt" not in SKIP:
        ctx.libvirtd = Libvirtd(ctx.workdir)
        ctx.cleanup.append(ctx.libvirtd.stop)
        try:
            ctx.libvirtd.ensure()
            ctx.available.add("libvirt")
        except (BenchError, OSError, subprocess.SubprocessError) as e:
            ctx.unavailable["libvirt"] = str(e)
            log(f"libvirt unavailable: {e}")


def main():
    ctx = Ctx()
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        setup(ctx)
        if ctx.libvirtd is not None and ctx.libvirtd.notes:
            result["libvirt_notes"] = ctx.libvirtd.notes
        result["host"] = host_info(ctx)
        result["unavailable"] = ctx.unavailable
        if ctx.available & {"raw", "vireo", "libvirt"} and "start" not in SKIP:
            result["start_latency"] = start_latency(ctx)
        if ctx.vireod is not None:
            ctx.vireod.stop()
            ctx.cleanup.remove(ctx.vireod.stop)
        if "control" not in SKIP:
            result["control_plane"] = control_plane(ctx)
        result["host"]["loadavg_at_end"] = os.getloadavg()
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
    summary(result)
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C so the finally blocks stop what we started.
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
