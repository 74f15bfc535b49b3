"""Vireo's side of the backup benchmark: a VM with the two benchmark disks,
a backup store, and the backup jobs of docs/api.md (issue 5):
  POST /1.0/backup-stores {"name","path"}
  POST /1.0/instances/{name}/backups {"store"}             (vireo backup create)
  POST /1.0/backup-stores/{store}/backups/{id}/restore {"name"}  (vireo backup restore)
Requests go straight to the API over the unix socket (what the CLI sends;
the CLI adds only its own process start).
"""

import os
import shutil
import subprocess
import time

from backup_data import BLOCK, run
from backup_peers import du_bytes
from benchlib import BenchError, Vireod, log, wait_file_marker
from guest_console import guest_run, wait_shell

INSTANCE = "bkbench"
RESTORED = "bkbench-restored"
STORE = "bench"


def proc_cpu_s(pid):
    """utime + stime of a process, seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class VireoContender:
    name = "vireo"

    def __init__(self, build, workdir, kit, mode, memory, disks, patched_initrd):
        self.workdir = workdir
        self.mode = mode  # "running" (live backup) or "stopped"
        self.disks = disks
        self.store_path = os.path.join(workdir, "vireo-store")
        self.backups = {}
        self.restored = False
        self.vireod = Vireod(os.path.join(build, "vireod"), workdir, "backup", "tcg",
                             ["--default-network", "none"])
        self.api = self.vireod.api
        os.makedirs(self.store_path)  # a store is an existing (empty) directory
        self.api.call_wait("POST", "/1.0/backup-stores", {"name": STORE,
                                                          "path": self.store_path})
        spec = {"name": INSTANCE, "cpus": 1, "memory": memory, "nics": 0,
                "kernel": os.path.join(kit, "vmlinux"), "initrd": patched_initrd,
                "cmdline": "console=ttyS0 quiet",
                "disks": [{"source": d["qcow2"]} for d in disks]}
        self.api.call_wait("POST", "/1.0/instances", spec, timeout=900)
        inst = self.api.json("GET", f"/1.0/instances/{INSTANCE}")["metadata"]
        self.disk_paths = [d["path"] for d in inst["config"]["disks"]]
        if mode == "running":
            t0 = time.monotonic()
            self.api.call_wait("PUT", f"/1.0/instances/{INSTANCE}/state", {"action": "start"})
            console = os.path.join(self.vireod.data_dir, "run", inst["id"], "console.log")
            wait_file_marker(console, 0, t0, 300)
            wait_shell(self.vireod.sock, INSTANCE)

    def settings(self):
        return {"encryption": "none (store created without --encrypt-key)",
                "compression": "zstd (Vireo's store)", "chunker": "fixed 256 KiB, disk-aligned",
                "vm": self.mode, "api": "POST /1.0/instances/NAME/backups, "
                                        "POST /1.0/backup-stores/S/backups/ID/restore"}

    def _daemon_pids(self):
        pids = [self.vireod.proc.pid]
        try:
            st = self.api.json("GET", f"/1.0/instances/{INSTANCE}/state")["metadata"]
            if st.get("pid"):
                pids.append(st["pid"])
        except BenchError:
            pass
        return pids

    def _timed_op(self, method, path, body):
        """Wall time from the request to the operation's end, plus the CPU
        time vireod and the VM's QEMU spent meanwhile."""
        pids = self._daemon_pids()
        cpu0 = sum(proc_cpu_s(p) for p in pids)
        t0 = time.monotonic()
        op = self.api.call_wait(method, path, body, timeout=1800)
        wall = time.monotonic() - t0
        cpu = sum(proc_cpu_s(p) for p in pids) - cpu0
        return op.get("metadata") or {}, {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}

    def backup(self, tag, _src_dir=None):
        info, st = self._timed_op("POST", f"/1.0/instances/{INSTANCE}/backups", {"store": STORE})
        if not info.get("id"):
            raise BenchError(f"backup result has no id: {str(info)[:300]}")
        self.backups[tag] = info["id"]
        st["tool_stats"] = {
            "id": info["id"], "incremental": info.get("incremental"),
            "note": info.get("note"),
            "bytes_read": sum(d.get("bytes_read", 0) for d in info.get("disks", [])),
            "bytes_new": sum(d.get("bytes_new", 0) for d in info.get("disks", [])),
            "disks": info.get("disks")}
        return st

    def apply_change(self):
        """The 5% rewrite through QEMU, so its dirty bitmaps see it: inside
        the running guest (dd from the patch data in its initramfs), or with
        qemu-io on the stopped VM's qcow2 files."""
        t0 = time.monotonic()
        if self.mode == "running":
            out = guest_run(self.vireod.sock, INSTANCE, "sh /patch/apply.sh", timeout=900)
            if "PATCH-OK" not in out:
                raise BenchError(f"guest rewrite failed: {out[-300:]!r}")
        else:
            for d, path in zip(self.disks, self.disk_paths):
                qemu_io_patch(path, d["plan"], d["patch_data"], self.workdir)
        return round(time.monotonic() - t0, 2)

    def restore(self, tag, _dest_dir=None):
        path = f"/1.0/backup-stores/{STORE}/backups/{self.backups[tag]}/restore"
        self.restored = True
        _, st = self._timed_op("POST", path, {"name": RESTORED})
        return st

    def verify_restore(self, expected_raws):
        """qemu-img compare of every restored disk against the peers' raw
        file holding the same state (content only, not allocation)."""
        inst = self.api.json("GET", f"/1.0/instances/{RESTORED}")["metadata"]
        paths = [d["path"] for d in inst["config"]["disks"]]
        if len(paths) != len(expected_raws):
            raise BenchError(f"restored VM has {len(paths)} disks, expected {len(expected_raws)}")
        for got, want in zip(paths, expected_raws):
            r = subprocess.run(["qemu-img", "compare", "-U", "-F", "raw", got, want],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise BenchError(f"restored {got} differs from {want}: {r.stdout.strip()}")
        return True

    def store_bytes(self):
        return du_bytes(self.store_path)

    def version(self):
        return self.vireod.info.get("api_version") or "vireod (this tree)"

    def stop(self):
        for name in ((RESTORED,) if self.restored else ()) + (INSTANCE,):
            try:
                self.api.call_wait("DELETE", f"/1.0/instances/{name}?force=1")
            except Exception as e:  # best effort while tearing down
                log(f"delete {name}: {e}")
        self.vireod.stop()
        # Kept for debugging: the workdir is deleted at the end.
        try:
            shutil.copyfile(self.vireod.log_path, "/var/tmp/vireo-bench-backup-vireod.log")
        except OSError:
            pass


def qemu_io_patch(qcow2, plan, data_path, workdir):
    """Applies a plan with qemu-io (one region file each: `write -s` fills
    its buffer from the start of a file)."""
    tmp = os.path.join(workdir, "qemu-io-regions")
    os.makedirs(tmp, exist_ok=True)
    cmds = ["qemu-io", "-f", "qcow2", qcow2]
    with open(data_path, "rb") as src:
        for i, (start, n) in enumerate(plan):
            piece = os.path.join(tmp, f"{i}.bin")
            with open(piece, "wb") as f:
                f.write(src.read(n * BLOCK))
            cmds += ["-c", f"write -q -s {piece} {start * BLOCK} {n * BLOCK}"]
    run(cmds)
    for fn in os.listdir(tmp):
        os.unlink(os.path.join(tmp, fn))
