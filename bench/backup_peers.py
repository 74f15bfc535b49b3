"""The peers of the backup benchmark: borgbackup and restic (Debian
packages), driven through their command lines on the raw image files.
Each keeps its repository, cache and config under the benchmark's workdir.
"""

import json
import os
import resource
import subprocess
import time

from benchlib import BenchError


def du_bytes(path):
    """Allocated bytes of a tree (what `du -s` reports, in bytes)."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for fn in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, fn)).st_blocks * 512
            except OSError:
                pass
    return total


def timed(argv, env=None, cwd=None, timeout=1800):
    """Runs a command; returns (stdout, stats) where stats holds the wall
    time, the children's CPU time and the bytes they read from the block
    device (ru_inblock, meaningful after a page-cache drop)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise BenchError(f"{' '.join(argv)[:100]} failed ({r.returncode}): "
                         f"{r.stderr.strip()[-500:]}")
    return r.stdout, {
        "wall_s": round(wall, 2),
        "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
        "disk_read_bytes": (after.ru_inblock - before.ru_inblock) * 512,
    }


class Borg:
    name = "borg"

    def __init__(self, workdir, compression):
        self.repo = os.path.join(workdir, "borg-repo")
        self.compression = compression
        base = os.path.join(workdir, "borg-base")
        os.makedirs(base, exist_ok=True)
        self.env = dict(os.environ, BORG_BASE_DIR=base, BORG_PASSPHRASE="",
                        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                        BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")

    def settings(self):
        return {"encryption": "none", "compression": self.compression,
                "chunker": "default (buzhash, ~2 MiB average)",
                "restore": "borg extract --sparse"}

    def version(self):
        out, _ = timed(["borg", "--version"], env=self.env)
        return out.strip()

    def init(self):
        timed(["borg", "init", "-e", "none", self.repo], env=self.env)

    def backup(self, tag, src_dir):
        out, st = timed(["borg", "create", "--json", "--compression", self.compression,
                         f"{self.repo}::{tag}", "."], env=self.env, cwd=src_dir)
        try:
            stats = json.loads(out)["archive"]["stats"]
            st["tool_stats"] = {"deduplicated_size": stats.get("deduplicated_size"),
                                "compressed_size": stats.get("compressed_size"),
                                "original_size": stats.get("original_size")}
        except (ValueError, KeyError, TypeError):
            pass
        return st

    def restore(self, tag, dest_dir):
        _, st = timed(["borg", "extract", "--sparse", f"{self.repo}::{tag}"], env=self.env,
                      cwd=dest_dir)
        return st

    def store_bytes(self):
        return du_bytes(self.repo)


class Restic:
    name = "restic"

    def __init__(self, workdir):
        self.repo = os.path.join(workdir, "restic-repo")
        self.env = dict(os.environ, RESTIC_REPOSITORY=self.repo,
                        RESTIC_PASSWORD="vireo-bench",
                        RESTIC_CACHE_DIR=os.path.join(workdir, "restic-cache"))
        self.snapshots = {}

    def settings(self):
        return {"encryption": "AES-256-CTR + Poly1305 (always on in restic)",
                "compression": "auto (zstd; repository format 2)",
                "chunker": "default (Rabin, ~1 MiB average)",
                "restore": "restic restore (0.14 has no --sparse: writes the zeros)"}

    def version(self):
        out, _ = timed(["restic", "version"], env=self.env)
        return out.strip()

    def init(self):
        timed(["restic", "init", "--repository-version", "2"], env=self.env)

    def backup(self, tag, src_dir):
        out, st = timed(["restic", "backup", "--json", "--host", "vireo-bench", "--tag", tag,
                         "."], env=self.env, cwd=src_dir)
        for line in out.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("message_type") == "summary":
                self.snapshots[tag] = msg.get("snapshot_id")
                st["tool_stats"] = {"data_added": msg.get("data_added"),
                                    "total_bytes_processed": msg.get("total_bytes_processed")}
        if tag not in self.snapshots:
            raise BenchError("restic backup printed no summary")
        return st

    def restore(self, tag, dest_dir):
        _, st = timed(["restic", "restore", self.snapshots[tag], "--target", dest_dir],
                      env=self.env)
        return st

    def store_bytes(self):
        return du_bytes(self.repo)
