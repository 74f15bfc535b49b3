#!/usr/bin/env python3
"""Backup benchmark (issue 5): full backup, incremental backup after a 5%
rewrite, restore and store size, for Vireo vs borgbackup and restic on the
same two ext4 disk images filled from this machine's /usr.

Settings (environment, see bench/README.md): BENCH_DISK_GIB (2),
BENCH_FILL_GIB (1.3), BENCH_CHANGE_PCT (5), BENCH_REGION_KIB ("4-1024"),
BENCH_SEED (1), BENCH_VM (running|stopped), BENCH_VM_MEMORY (1G),
BENCH_BORG_COMPRESSION (zstd,1), BENCH_SKIP (vireo,borg,restic),
BENCH_DATA_DIR, VIREO_BUILD, VIREO_GUEST_KIT, BENCH_OUT.
Writes key "backup" of bench/results/backup.json (other keys are kept).
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backup_data as data  # noqa: E402
from backup_peers import Borg, Restic  # noqa: E402
from benchlib import BenchError, log  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = os.environ
DISK_BYTES = int(float(ENV.get("BENCH_DISK_GIB", "2")) * 2**30)
FILL_BYTES = int(float(ENV.get("BENCH_FILL_GIB", "1.3")) * 2**30)
CHANGE = float(ENV.get("BENCH_CHANGE_PCT", "5")) / 100
REGION_KIB = [int(x) for x in ENV.get("BENCH_REGION_KIB", "4-1024").split("-")]
SEED = ENV.get("BENCH_SEED", "1")
VM_MODE = ENV.get("BENCH_VM", "running")
VM_MEMORY = ENV.get("BENCH_VM_MEMORY", "1G")
BORG_COMPRESSION = ENV.get("BENCH_BORG_COMPRESSION", "zstd,1")
SKIP = set(filter(None, ENV.get("BENCH_SKIP", "").split(",")))
DATA_DIR = ENV.get("BENCH_DATA_DIR", "/var/tmp/vireo-bench-backup-data")
BUILD = ENV.get("VIREO_BUILD", os.path.join(ROOT, "build-bench"))
KIT = ENV.get("VIREO_GUEST_KIT", os.path.expanduser("~/.cache/vireo/guest-kit"))
OUT = ENV.get("BENCH_OUT", os.path.join(ROOT, "bench", "results", "backup.json"))
PEERS = ("borg", "restic")


def drop_caches():
    """Page cache out, so every timed step reads from the disk. Root only."""
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def find_file(top, name):
    for dirpath, _, filenames in os.walk(top):
        if name in filenames:
            return os.path.join(dirpath, name)
    raise BenchError(f"{name} not found under {top}")


def files_equal(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


def write_result(key, value):
    """Read-modify-write of the shared result file (bench/snapshot.py
    writes key "snapshot" in the same file)."""
    try:
        with open(OUT) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {}
    doc[key] = value
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, OUT)


class Run:
    """One benchmark run: contenders, phases, results."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.res = {"date": datetime.datetime.now(datetime.timezone.utc)
                    .isoformat(timespec="seconds"), "host": {"loadavg_start": loadavg()}}
        self.contenders = {}
        self.dropped = []

    def step(self, who, phase, fn):
        self.dropped.append(drop_caches())
        log(f"{who}: {phase}")
        try:
            st = fn()
        except (BenchError, OSError, subprocess.SubprocessError) as e:
            log(f"{who}: {phase} failed: {e}")
            self.res["tools"][who][phase] = {"error": str(e)[:800]}
            return None
        self.res["tools"][who][phase] = st
        log(f"{who}: {phase} {st.get('wall_s')} s")
        return st

    def setup(self):
        self.disks = data.prepare_images(DATA_DIR, DISK_BYTES, FILL_BYTES)
        self.peer_dir = os.path.join(self.workdir, "peers")
        os.makedirs(self.peer_dir)
        for i, d in enumerate(self.disks):
            d["plan"] = data.make_plan(f"{SEED}-{d['name']}", DISK_BYTES, CHANGE,
                                       REGION_KIB[0] // 4, REGION_KIB[-1] // 4)
            d["patch_data"] = os.path.join(self.workdir, f"patch-{d['name']}.bin")
            data.write_patch_data(d["plan"], f"{SEED}-{d['name']}", d["patch_data"])
            d["peer_raw"] = os.path.join(self.peer_dir, f"{d['name']}.raw")
            data.sparse_copy(d["raw"], d["peer_raw"])
        self.res["data"] = {
            "disks": [{k: d[k] for k in ("name", "label", "roots", "files", "file_bytes")}
                      | {"size_bytes": DISK_BYTES,
                         "allocated_bytes": os.stat(d["raw"]).st_blocks * 512,
                         "rewrite": data.plan_stats(d["plan"], DISK_BYTES)}
                      for d in self.disks],
            "rewrite": f"{CHANGE * 100:g}% of each disk in non-overlapping 4 KiB-aligned "
                       f"regions of {REGION_KIB[0]}-{REGION_KIB[-1]} KiB (uniform), spread "
                       f"uniformly over the disk, random (incompressible) bytes, seed {SEED}; "
                       "identical regions and bytes for every tool",
        }
        self.res["tools"] = {}
        for name in ("vireo",) + PEERS:
            if name in SKIP:
                continue
            self.res["tools"][name] = {}
            try:
                self.contenders[name] = self.make(name)
                c = self.contenders[name]
                self.res["tools"][name]["version"] = c.version()
                self.res["tools"][name]["settings"] = c.settings()
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                log(f"{name}: unavailable: {e}")
                self.res["tools"][name]["error"] = str(e)[:800]
                self.contenders.pop(name, None)

    def make(self, name):
        if name == "borg":
            c = Borg(self.workdir, BORG_COMPRESSION)
            c.init()
            return c
        if name == "restic":
            c = Restic(self.workdir)
            c.init()
            return c
        from backup_vireo import VireoContender
        initrd = None
        if VM_MODE == "running":
            initrd = data.patched_initrd(os.path.join(KIT, "initrd.img"), self.disks,
                                         self.workdir, os.path.join(self.workdir, "initrd.img"))
        c = VireoContender(BUILD, self.workdir, KIT, VM_MODE, VM_MEMORY, self.disks, initrd)
        self.cleanup.append(c.stop)
        return c

    def phases(self):
        live = dict(self.contenders)
        for name, c in list(live.items()):
            if not self.step(name, "full", lambda c=c: c.backup("full", self.peer_dir)):
                live.pop(name)
        # The same 5% rewrite for everyone; not timed against each other.
        t0 = time.monotonic()
        for d in self.disks:
            data.apply_patch(d["peer_raw"], d["plan"], d["patch_data"])
        self.res["rewrite_apply_s"] = {"peers_python": round(time.monotonic() - t0, 2)}
        if "vireo" in live:
            try:
                self.res["rewrite_apply_s"]["vireo_" + VM_MODE] = live["vireo"].apply_change()
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                self.res["tools"]["vireo"]["rewrite"] = {"error": str(e)[:800]}
                live.pop("vireo")
        for name, c in list(live.items()):
            if not self.step(name, "incremental", lambda c=c: c.backup("incr", self.peer_dir)):
                live.pop(name)
        for name, c in live.items():
            self.res["tools"][name]["store_bytes"] = c.store_bytes()
        for name, c in live.items():
            dest = os.path.join(self.workdir, f"restore-{name}")
            os.makedirs(dest)
            st = self.step(name, "restore", lambda c=c, dest=dest: c.restore("incr", dest))
            if st:
                st["verified"] = self.verify(name, c, dest)
            shutil.rmtree(dest, ignore_errors=True)

    def verify(self, name, c, dest):
        """Byte-identity of the restored disks with the rewritten state."""
        try:
            if name == "vireo":
                return c.verify_restore([d["peer_raw"] for d in self.disks])
            for d in self.disks:
                got = find_file(dest, os.path.basename(d["peer_raw"]))
                if not files_equal(got, d["peer_raw"]):
                    raise BenchError(f"{got} differs from {d['peer_raw']}")
            return True
        except (BenchError, OSError) as e:
            log(f"{name}: restore verification failed: {e}")
            return f"FAILED: {e}"

    def summarize(self):
        tools = self.res["tools"]

        def metric(name, phase):
            v = tools.get(name, {}).get(phase)
            return v.get("wall_s") if isinstance(v, dict) else None

        summary, goals = {}, {}
        for phase in ("full", "incremental", "restore"):
            row = {n: metric(n, phase) for n in tools}
            peers = [(row[p], p) for p in PEERS if row.get(p)]
            entry = {"seconds": row}
            if peers and row.get("vireo"):
                best, who = min(peers)
                entry["faster_peer"] = who
                entry["faster_peer_s"] = best
                entry["speedup_vs_faster_peer"] = round(best / row["vireo"], 2)
            summary[phase] = entry
        sizes = {n: tools[n].get("store_bytes") for n in tools if tools[n].get("store_bytes")}
        summary["store_bytes"] = sizes
        peer_sizes = [sizes[p] for p in PEERS if p in sizes]
        if peer_sizes and "vireo" in sizes:
            summary["store_vireo_over_smaller_peer"] = round(sizes["vireo"] / min(peer_sizes), 3)
            goals["store_no_larger_than_smaller_peer"] = sizes["vireo"] <= min(peer_sizes)
        if "speedup_vs_faster_peer" in summary["full"]:
            goals["full_at_least_2x_faster"] = summary["full"]["speedup_vs_faster_peer"] >= 2
        if "speedup_vs_faster_peer" in summary["incremental"]:
            goals["incremental_at_least_5x_faster"] = (
                summary["incremental"]["speedup_vs_faster_peer"] >= 5)
        self.res["summary"] = summary
        self.res["goals"] = goals
        return summary, goals


def print_report(summary, goals):
    targets = {"full": 2, "incremental": 5, "restore": None}
    print()
    for phase, target in targets.items():
        entry = summary.get(phase, {})
        secs = ", ".join(f"{n} {v} s" if v else f"{n} -" for n, v in entry.get("seconds", {}).items())
        line = f"{phase:12} {secs}"
        if "speedup_vs_faster_peer" in entry:
            line += (f" -> Vireo {entry['speedup_vs_faster_peer']}x as fast as "
                     f"{entry['faster_peer']}")
            if target:
                ok = entry["speedup_vs_faster_peer"] >= target
                line += f" (goal >= {target}x: {'met' if ok else 'NOT met'})"
        print(line)
    sizes = summary.get("store_bytes", {})
    line = "store        " + ", ".join(f"{n} {v / 2**20:.0f} MiB" for n, v in sizes.items())
    if "store_vireo_over_smaller_peer" in summary:
        ok = goals.get("store_no_larger_than_smaller_peer")
        line += (f" -> Vireo/smaller peer {summary['store_vireo_over_smaller_peer']} "
                 f"(goal <= 1: {'met' if ok else 'NOT met'})")
    print(line)


def main():
    workdir = tempfile.mkdtemp(prefix="vireo-bench-backup.", dir="/var/tmp")
    os.chmod(workdir, 0o755)
    run = Run(workdir)
    run.cleanup = []
    run.res["settings"] = {
        "disk_gib": DISK_BYTES / 2**30, "fill_gib": FILL_BYTES / 2**30,
        "change_pct": CHANGE * 100, "region_kib": REGION_KIB, "seed": SEED, "vm": VM_MODE,
        "vm_memory": VM_MEMORY, "borg_compression": BORG_COMPRESSION, "skip": sorted(SKIP)}
    failed = False
    try:
        for f in ("vmlinux", "initrd.img"):
            if "vireo" not in SKIP and not os.path.isfile(os.path.join(KIT, f)):
                raise BenchError(f"{KIT}/{f} missing: run scripts/guest-kit")
        run.setup()
        run.phases()
    except BenchError as e:
        log(f"error: {e}")
        run.res["error"] = str(e)
        failed = True
    finally:
        for fn in reversed(run.cleanup):
            try:
                fn()
            except Exception as e:  # keep cleaning
                log(f"cleanup: {e}")
        shutil.rmtree(workdir, ignore_errors=True)
    summary, goals = run.summarize() if "tools" in run.res else ({}, {})
    run.res["host"].update({
        "loadavg_end": loadavg(), "cpus": os.cpu_count(),
        "page_cache_dropped_before_each_step": bool(run.dropped) and all(run.dropped),
        "note": "shared, noisy machine: 2 cores used by several engineers' builds and tests "
                "at the same time; no usable KVM, the Vireo VM runs under TCG (the backup "
                "reads go through its QEMU); timings vary run to run"})
    write_result("backup", run.res)
    print(json.dumps({"summary": summary, "goals": goals}, indent=2))
    print_report(summary, goals)
    print(f"\nwrote {OUT} (key \"backup\")")
    return 1 if failed else 0


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
