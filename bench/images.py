#!/usr/bin/env python3
"""Images benchmark (issue 3): deploy time from an image, and clone cost.

1. Launch time from image: from the launch request to VIREO-GUEST-UP on the
   guest's serial console, for rounds of 1, 10 and 50 linked clones of one
   image launched one after another (earlier clones keep running), Vireo
   (`POST /1.0/instances` with "image" and "start", what `vireo launch` sends)
   vs libvirt (`qemu-img create -b` for the clone plus `virt-install --import`
   with the same kernel, initrd, memory and disk bus).
2. Clone cost: time and disk space of one linked clone of a 2 GiB image:
   the Vireo create-from-image request (no start), and `qemu-img create -b`
   alone for reference.

Settings (environment): BENCH_ROUNDS (default "1,10,50"), BENCH_MEMORY_MIB
(128), BENCH_IMAGE_GIB (2), BENCH_SKIP (comma list of vireo,libvirt,clone),
VIREO_BUILD, VIREO_GUEST_KIT, BENCH_OUT. Writes bench/results/images.json.
"""

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BenchError, Libvirtd, Vireod, log, median, terminate, virsh  # noqa: E402
from benchlib import wait_file_marker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = os.environ
ROUNDS = [int(x) for x in ENV.get("BENCH_ROUNDS", "1,10,50").split(",") if x]
MEMORY_MIB = int(ENV.get("BENCH_MEMORY_MIB", "128"))
IMAGE_GIB = int(ENV.get("BENCH_IMAGE_GIB", "2"))
BUILD = ENV.get("VIREO_BUILD", os.path.join(ROOT, "build-bench"))
KIT = ENV.get("VIREO_GUEST_KIT", os.path.expanduser("~/.cache/vireo/guest-kit"))
OUT = ENV.get("BENCH_OUT", os.path.join(ROOT, "bench", "results", "images.json"))
SKIP = set(filter(None, ENV.get("BENCH_SKIP", "").split(",")))
CMDLINE = "console=ttyS0 quiet"
BOOT_TIMEOUT = 300


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def allocated_bytes(path):
    return os.stat(path).st_blocks * 512


def make_image(workdir):
    """A 2 GiB qcow2 image with real data in it: the first 256 MiB are random
    bytes, so a full copy would cost something and a clone must not."""
    raw = os.path.join(workdir, "base.raw")
    with open(raw, "wb") as f:
        f.truncate(IMAGE_GIB << 30)
    run(["dd", "if=/dev/urandom", f"of={raw}", "bs=1M", "count=256", "conv=notrunc"])
    img = os.path.join(workdir, "base.qcow2")
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, img])
    os.unlink(raw)
    os.chmod(img, 0o644)
    return img


def copy_public(src, dst):
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    return dst


# ---- Vireo ---------------------------------------------------------------

def vireo_launch_round(ctx, count, tag):
    api = ctx.vireod.api
    times, names = [], []
    try:
        for i in range(count):
            name = f"{tag}-{i}"
            t0 = time.monotonic()
            op = api.json("POST", "/1.0/instances", {
                "name": name, "image": "bench-base", "start": True, "cpus": 1, "nics": 0,
                "memory": f"{MEMORY_MIB}M", "kernel": ctx.kernel, "initrd": ctx.initrd,
                "cmdline": CMDLINE})
            names.append(name)
            # The console log appears once QEMU runs; its path needs the id.
            console = None
            deadline = t0 + BOOT_TIMEOUT
            while console is None:
                st, raw = api.request("GET", f"/1.0/instances/{name}")
                if st == 200:
                    iid = json.loads(raw)["metadata"]["id"]
                    console = os.path.join(ctx.vireod.data_dir, "run", iid, "console.log")
                elif time.monotonic() > deadline:
                    raise BenchError(f"{name} never appeared: {raw[:200]}")
                else:
                    time.sleep(0.002)

            def failed(op=op):
                if op.get("type") != "async":
                    return None
                md = api.json("GET", op["operation"])["metadata"]
                return f"launch failed: {md.get('err')}" if md.get("status") == "Failure" else None

            times.append(wait_file_marker(console, 0, t0, BOOT_TIMEOUT, failed))
    finally:
        for name in names:
            try:
                api.call_wait("DELETE", f"/1.0/instances/{name}?force=1")
            except Exception as e:  # keep cleaning
                log(f"delete {name}: {e}")
    return times


def vireo_clone_cost(ctx):
    api = ctx.vireod.api
    times, sizes = [], []
    for i in range(5):
        name = f"clone-{i}"
        t0 = time.monotonic()
        api.call_wait("POST", "/1.0/instances", {
            "name": name, "image": "bench-base", "memory": f"{MEMORY_MIB}M",
            "kernel": ctx.kernel, "initrd": ctx.initrd, "cmdline": CMDLINE})
        times.append((time.monotonic() - t0) * 1000.0)
        inst = api.json("GET", f"/1.0/instances/{name}")["metadata"]
        root = inst["config"]["disks"][0]["path"]
        sizes.append(allocated_bytes(root))
        api.call_wait("DELETE", f"/1.0/instances/{name}")
    return {"create_ms": [round(t, 1) for t in times], "create_ms_median": round(median(times), 1),
            "allocated_bytes_median": int(median(sizes)),
            "method": "POST /1.0/instances with image (no start): request to operation done, "
                      "linked clone + record; allocated = st_blocks of the clone file"}


def qemu_img_clone_cost(ctx):
    times, sizes = [], []
    for i in range(5):
        path = os.path.join(ctx.workdir, f"qi-clone-{i}.qcow2")
        t0 = time.monotonic()
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", ctx.base, "-F", "qcow2", path])
        times.append((time.monotonic() - t0) * 1000.0)
        sizes.append(allocated_bytes(path))
        os.unlink(path)
    return {"create_ms_median": round(median(times), 1), "allocated_bytes_median": int(median(sizes))}


# ---- libvirt ---------------------------------------------------------------

def libvirt_launch_round(ctx, count, tag):
    times, names = [], []
    env = dict(os.environ, VIRTINSTALL_OSINFO_DISABLE_REQUIRE="1")
    try:
        for i in range(count):
            name = f"lv-{tag}-{i}"
            disk = os.path.join(ctx.lv_dir, f"{name}.qcow2")
            log_path = os.path.join(ctx.lv_dir, f"{name}.log")
            t0 = time.monotonic()
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", ctx.lv_base, "-F", "qcow2",
                 disk])
            proc = subprocess.Popen(
                ["virt-install", "--connect", "qemu:///system", "--import", "--name", name,
                 "--memory", str(MEMORY_MIB), "--vcpus", "1", "--virt-type", "qemu",
                 "--machine", "q35", "--cpu", "mode=maximum,check=none",
                 "--disk", f"path={disk},format=qcow2,bus=virtio",
                 "--boot", f"kernel={ctx.lv_kernel},initrd={ctx.lv_initrd},"
                           f"kernel_args={CMDLINE}",
                 "--serial", f"file,path={log_path}", "--graphics", "none",
                 "--network", "none", "--noautoconsole", "--osinfo", "linux2022"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True, env=env)
            names.append(name)

            def failed(proc=proc):
                if proc.poll() not in (None, 0):
                    return f"virt-install failed: {proc.stderr.read().strip()[:300]}"
                return None

            times.append(wait_file_marker(log_path, 0, t0, BOOT_TIMEOUT, failed))
            proc.wait(timeout=120)
    finally:
        for name in names:
            virsh("destroy", name, check=False)
            virsh("undefine", name, "--nvram", check=False)
    return times


# ---- driver ----------------------------------------------------------------

class Ctx:
    pass


def stats(times):
    if not times:
        return {}
    half = len(times) // 2
    first, last = times[:max(1, half)], times[half:] or times
    return {"count": len(times), "median_ms": round(median(times), 1),
            "mean_ms": round(statistics.mean(times), 1),
            "first_half_median_ms": round(median(first), 1),
            "second_half_median_ms": round(median(last), 1),
            "max_ms": round(max(times), 1), "all_ms": [round(t, 1) for t in times]}


def main():
    ctx = Ctx()
    ctx.workdir = tempfile.mkdtemp(prefix="vireo-bench-images.", dir="/var/tmp")
    os.chmod(ctx.workdir, 0o755)
    cleanup = []
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "settings": {"rounds": ROUNDS, "memory_mib": MEMORY_MIB, "image_gib": IMAGE_GIB,
                           "cmdline": CMDLINE, "accel": "tcg", "cpus": os.cpu_count()}}
    try:
        for f in ("vmlinux", "initrd.img"):
            if not os.path.isfile(os.path.join(KIT, f)):
                raise BenchError(f"{KIT}/{f} missing: run scripts/guest-kit")
        ctx.kernel = copy_public(os.path.join(KIT, "vmlinux"), os.path.join(ctx.workdir, "kernel"))
        ctx.initrd = copy_public(os.path.join(KIT, "initrd.img"),
                                 os.path.join(ctx.workdir, "initrd.img"))
        log(f"making a {IMAGE_GIB} GiB image")
        ctx.base = make_image(ctx.workdir)
        result["image_bytes_allocated"] = allocated_bytes(ctx.base)

        # 50 one-vCPU guests on 2 cores: past the default 4x CPU overcommit
        # admission limit (libvirt has none); the guests idle after boot.
        ctx.vireod = Vireod(os.path.join(BUILD, "vireod"), ctx.workdir, "img", "tcg",
                            ["--cpu-overcommit", "32", "--default-network", "none"])
        cleanup.append(ctx.vireod.stop)
        t0 = time.monotonic()
        ctx.vireod.api.call_wait("POST", "/1.0/images", {"source": ctx.base,
                                                         "alias": "bench-base"}, timeout=1800)
        result["vireo_import_s"] = round(time.monotonic() - t0, 2)

        if "clone" not in SKIP:
            result["clone_cost"] = {"vireo": vireo_clone_cost(ctx),
                                    "qemu_img": qemu_img_clone_cost(ctx)}
            v = result["clone_cost"]["vireo"]
            log(f"clone: vireo {v['create_ms_median']} ms, {v['allocated_bytes_median']} B")

        libvirt_ok = "libvirt" not in SKIP
        if libvirt_ok:
            lv = Libvirtd(ctx.workdir)
            cleanup.append(lv.stop)
            try:
                lv.ensure()
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                result["libvirt_unavailable"] = str(e)
                libvirt_ok = False
            ctx.lv_dir = os.path.join(ctx.workdir, "libvirt")
            os.makedirs(ctx.lv_dir)
            os.chmod(ctx.lv_dir, 0o777)
            # libvirt relabels (chowns) the whole backing chain: its own copies.
            ctx.lv_base = copy_public(ctx.base, os.path.join(ctx.lv_dir, "base.qcow2"))
            ctx.lv_kernel = copy_public(ctx.kernel, os.path.join(ctx.lv_dir, "kernel"))
            ctx.lv_initrd = copy_public(ctx.initrd, os.path.join(ctx.lv_dir, "initrd.img"))

        launch = {}
        for n in ROUNDS:
            row = {}
            if "vireo" not in SKIP:
                log(f"vireo: launching {n} clones")
                row["vireo"] = stats(vireo_launch_round(ctx, n, f"r{n}"))
            if libvirt_ok:
                log(f"libvirt: launching {n} clones")
                try:
                    row["libvirt"] = stats(libvirt_launch_round(ctx, n, f"r{n}"))
                except (BenchError, subprocess.SubprocessError, OSError) as e:
                    row["libvirt"] = {"error": str(e)}
            if "median_ms" in row.get("vireo", {}) and "median_ms" in row.get("libvirt", {}):
                row["vireo_over_libvirt"] = round(row["vireo"]["median_ms"] /
                                                  row["libvirt"]["median_ms"], 3)
            launch[str(n)] = row
            log(f"round {n}: {json.dumps({k: v.get('median_ms') for k, v in row.items() if isinstance(v, dict)})}")
        result["launch"] = launch

        goals = {}
        v_meds = [launch[str(n)]["vireo"]["median_ms"] for n in ROUNDS
                  if "median_ms" in launch[str(n)].get("vireo", {})]
        if len(v_meds) >= 2:
            goals["flat_per_launch_max_over_min"] = round(max(v_meds) / min(v_meds), 3)
            goals["flat_within_25pct"] = max(v_meds) <= 1.25 * min(v_meds)
        ratios = [launch[str(n)]["vireo_over_libvirt"] for n in ROUNDS
                  if "vireo_over_libvirt" in launch[str(n)]]
        if ratios:
            goals["vireo_over_libvirt_worst"] = max(ratios)
            goals["at_most_half_of_libvirt"] = max(ratios) <= 0.5
        if "clone_cost" in result:
            c = result["clone_cost"]["vireo"]
            goals["clone_under_50ms"] = c["create_ms_median"] < 50
            goals["clone_under_1mib"] = c["allocated_bytes_median"] < (1 << 20)
        result["goals"] = goals
    finally:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as e:
                log(f"cleanup: {e}")
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps({"goals": result.get("goals"), "clone_cost": result.get("clone_cost"),
                      "launch_medians": {n: {k: v.get("median_ms") for k, v in r.items()
                                             if isinstance(v, dict)}
                                         for n, r in result.get("launch", {}).items()}},
                     indent=2))
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
