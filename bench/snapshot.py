#!/usr/bin/env python3
"""Snapshot benchmark (part of bench/run-backup; runnable alone).

Memory snapshot of a running guest-kit VM with 1 GiB RAM and a qcow2 data
disk, under TCG: Vireo (POST /1.0/instances/NAME/snapshots {"memory":true},
then POST .../restore {"confirm":true}) vs libvirt (`virsh snapshot-create-as
DOM NAME` = internal snapshot with memory on qcow2, `virsh snapshot-revert`),
same kernel/initrd/cmdline/RAM/disk. Both end up in QEMU's internal-snapshot
code (savevm/loadvm into the qcow2), so the difference is the manager's
overhead. Median of BENCH_SNAP_RUNS (3) runs each, interleaved.

Writes key "snapshot" of bench/results/backup.json (read-modify-write; other
keys are kept). Settings: BENCH_SNAP_RUNS, BENCH_SNAP_MEMORY_MIB (1024),
BENCH_SKIP (vireo,libvirt), VIREO_BUILD, VIREO_GUEST_KIT, BENCH_OUT.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from xml.sax.saxutils import escape

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BenchError, Libvirtd, Vireod, log, median, virsh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = os.environ
RUNS = int(ENV.get("BENCH_SNAP_RUNS", "3"))
MEMORY_MIB = int(ENV.get("BENCH_SNAP_MEMORY_MIB", "1024"))
CMDLINE = "console=ttyS0"
_default_build = os.path.join(ROOT, "build-bench")
if not os.path.exists(os.path.join(_default_build, "vireod")):
    _default_build = os.path.join(ROOT, "build")
BUILD = ENV.get("VIREO_BUILD", _default_build)
KIT = ENV.get("VIREO_GUEST_KIT", os.path.expanduser("~/.cache/vireo/guest-kit"))
OUT = ENV.get("BENCH_OUT", os.path.join(ROOT, "bench", "results", "backup.json"))
SKIP = set(filter(None, ENV.get("BENCH_SKIP", "").split(",")))
TEMPLATE = os.path.join(ROOT, "bench", "libvirt-domain.xml.in")
UP = b"VIREO-GUEST-UP"
NOTES = ("Both sides are QEMU internal snapshots in the qcow2 disk (Vireo: QMP jobs "
         "snapshot-save/snapshot-load; libvirt: savevm/loadvm). The idle guest-kit guest "
         "touches ~100 MB of its RAM, so vm_state_size is far below the RAM size; times "
         "grow with touched RAM. Timed from request to completed operation/virsh exit.")
DISK_MIB = 64


def copy(src, workdir, name):
    dst = os.path.join(workdir, name)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    return dst


def wait_marker(path, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if UP in f.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"guest did not come up ({path})")


def timed(fn):
    t0 = time.monotonic()
    fn()
    return (time.monotonic() - t0) * 1000.0


class VireoSide:
    def __init__(self, workdir):
        self.vd = Vireod(os.path.join(BUILD, "vireod"), workdir, "snap", "tcg")
        k = copy(os.path.join(KIT, "vmlinuz"), workdir, "kernel")
        i = copy(os.path.join(KIT, "initrd.img"), workdir, "initrd.img")
        api = self.vd.api
        api.call_wait("POST", "/1.0/instances", {
            "name": "snapbench", "cpus": 1, "memory": f"{MEMORY_MIB}M", "kernel": k,
            "initrd": i, "cmdline": CMDLINE, "disks": [{"size": f"{DISK_MIB}M"}]})
        inst = api.json("GET", "/1.0/instances/snapbench")["metadata"]
        api.call_wait("PUT", "/1.0/instances/snapbench/state", {"action": "start"})
        wait_marker(os.path.join(self.vd.data_dir, "run", inst["id"], "console.log"))
        self.vm_state = 0

    def create(self, name):
        md = self.vd.api.call_wait("POST", "/1.0/instances/snapbench/snapshots",
                                   {"name": name, "memory": True}, timeout=1800)
        self.vm_state = (md.get("metadata") or {}).get("vm_state_size", 0)

    def restore(self, name):
        self.vd.api.call_wait("POST", f"/1.0/instances/snapbench/snapshots/{name}/restore",
                              {"confirm": True}, timeout=1800)

    def delete(self, name):
        self.vd.api.call_wait("DELETE", f"/1.0/instances/snapbench/snapshots/{name}")

    def stop(self):
        self.vd.stop()


class LibvirtSide:
    NAME = "vireo-bench-snap"

    def __init__(self, workdir):
        self.lv = Libvirtd(workdir)
        self.lv.ensure()
        virsh("destroy", self.NAME, check=False)
        virsh("undefine", self.NAME, "--snapshots-metadata", check=False)
        k = copy(os.path.join(KIT, "vmlinuz"), workdir, "lv-kernel")
        i = copy(os.path.join(KIT, "initrd.img"), workdir, "lv-initrd.img")
        disk = os.path.join(workdir, "lv-disk.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, f"{DISK_MIB}M"],
                       check=True)
        self.serial = os.path.join(workdir, "lv-serial.log")
        with open(TEMPLATE) as f:
            xml = f.read()
        for key, value in (("NAME", self.NAME), ("MEMORY_MIB", str(MEMORY_MIB)),
                           ("KERNEL", k), ("INITRD", i), ("CMDLINE", CMDLINE),
                           ("SERIAL_LOG", self.serial)):
            xml = xml.replace(f"@{key}@", escape(value, {"'": "&apos;"}))
        # Same data disk as the Vireo VM: internal snapshots need qcow2.
        xml = xml.replace("<serial type='file'>",
                          "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                          f"<source file='{escape(disk)}'/><target dev='vda' bus='virtio'/>"
                          "</disk>\n    <serial type='file'>", 1)
        path = os.path.join(workdir, "lv-domain.xml")
        with open(path, "w") as f:
            f.write(xml)
        virsh("define", path)
        virsh("start", self.NAME)
        wait_marker(self.serial)

    def create(self, name):
        virsh("snapshot-create-as", self.NAME, name, timeout=1800)

    def restore(self, name):
        virsh("snapshot-revert", self.NAME, name, timeout=1800)

    def delete(self, name):
        virsh("snapshot-delete", self.NAME, name)

    def stop(self):
        virsh("destroy", self.NAME, check=False)
        virsh("undefine", self.NAME, "--snapshots-metadata", check=False)
        self.lv.stop()


def summarize(samples):
    return {"create_ms": [round(x, 1) for x in samples["create"]],
            "restore_ms": [round(x, 1) for x in samples["restore"]],
            "create_median_ms": round(median(samples["create"]), 1),
            "restore_median_ms": round(median(samples["restore"]), 1)}


def write_result(result):
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    doc = {}
    if os.path.exists(OUT):
        try:
            with open(OUT) as f:
                doc = json.load(f)
        except ValueError:
            doc = {}
    doc["snapshot"] = result
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, OUT)


def main():
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "what": "memory snapshot create + restore of a running VM (qcow2 internal), "
                      f"{MEMORY_MIB} MiB RAM, TCG, guest kit",
              "runs": RUNS, "memory_mib": MEMORY_MIB, "unavailable": {},
              "notes": NOTES}
    workdir = tempfile.mkdtemp(prefix="vireo-snapbench-")
    os.chmod(workdir, 0o755)
    sides = {}
    try:
        for key, cls in (("vireo", VireoSide), ("libvirt", LibvirtSide)):
            if key in SKIP:
                result["unavailable"][key] = "skipped (BENCH_SKIP)"
                continue
            try:
                sides[key] = cls(workdir)
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                result["unavailable"][key] = str(e)
                log(f"{key} unavailable: {e}")
        samples = {k: {"create": [], "restore": []} for k in sides}
        for run in range(RUNS):
            order = list(sides)
            if run % 2:
                order.reverse()
            for key in order:
                side, name = sides[key], f"bench{run}"
                samples[key]["create"].append(timed(lambda: side.create(name)))
                samples[key]["restore"].append(timed(lambda: side.restore(name)))
                side.delete(name)
                log(f"{key} run {run}: create {samples[key]['create'][-1]:.0f} ms, "
                    f"restore {samples[key]['restore'][-1]:.0f} ms")
        for key in sides:
            result[key] = summarize(samples[key])
        if "vireo" in sides:
            result["vireo"]["vm_state_size"] = sides["vireo"].vm_state
        if "vireo" in result and "libvirt" in result:
            for what in ("create", "restore"):
                result[f"{what}_vireo_over_libvirt"] = round(
                    result["vireo"][f"{what}_median_ms"] /
                    result["libvirt"][f"{what}_median_ms"], 3)
    finally:
        for side in sides.values():
            try:
                side.stop()
            except Exception as e:  # best effort teardown
                log(f"teardown: {e}")
        shutil.rmtree(workdir, ignore_errors=True)
    write_result(result)
    print(json.dumps(result, indent=2))
    return 0 if not result["unavailable"] or len(result["unavailable"]) < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
