"""Test data of the backup benchmark (bench/backup.py): two ext4 disk images
filled from this machine's /usr, and the "5% rewrite" applied between the
full and the incremental backup, identical for every tool.

Python 3 standard library only.
"""

import hashlib
import json
import os
import random
import shutil
import subprocess

from benchlib import BenchError, log

BLOCK = 4096


def run(argv, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    r = subprocess.run(argv, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip()[-400:]
        raise BenchError(f"{' '.join(argv)[:120]}: {err}")
    return r


# ---- disk images -------------------------------------------------------------

# Each disk gets different files (no cross-disk duplicates to flatter any
# deduplicating tool): disk A from /usr/lib, disk B from the rest of /usr.
DISKS = [
    {"name": "A", "label": "vbenchA", "roots": ["/usr/lib"]},
    {"name": "B", "label": "vbenchB", "roots": ["/usr/share", "/usr/bin", "/usr/sbin",
                                                "/usr/libexec", "/usr/include", "/usr/lib"]},
]


def pick_files(roots, budget, taken):
    """Regular files under `roots`, walked in sorted order, until `budget`
    bytes; skips files in `taken` (already on another disk) and adds its
    picks to it. Returns paths relative to /usr."""
    picked, total = [], 0
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                path = os.path.join(dirpath, fn)
                if path in taken:
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if not (os.path.isfile(path) and not os.path.islink(path)):
                    continue
                if total + st.st_size > budget:
                    return picked, total
                taken.add(path)
                picked.append(os.path.relpath(path, "/usr"))
                total += st.st_size
    return picked, total


def build_image(raw, label, files, size_bytes, stage):
    """Copies `files` (relative to /usr) into `stage`, then makes an ext4
    image of `size_bytes` populated from it with `mkfs.ext4 -d` (no mount)."""
    os.makedirs(stage)
    listing = stage + ".list"
    with open(listing, "w") as f:
        f.write("\n".join(files) + "\n")
    tar_out = subprocess.Popen(["tar", "-C", "/usr", "--no-recursion", "-cf", "-", "-T", listing],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    run(["tar", "-C", stage, "-xf", "-"], stdin=tar_out.stdout)
    tar_out.wait()
    if os.path.exists(raw):
        os.unlink(raw)
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-E", "root_owner=0:0", "-d", stage, raw,
         str(size_bytes // 1024)])
    shutil.rmtree(stage)
    os.unlink(listing)


def prepare_images(cache_dir, size_bytes, fill_bytes):
    """Makes (or reuses from `cache_dir`) the pristine raw images and their
    qcow2 conversions. Returns [{"name","label","raw","qcow2","files",
    "file_bytes"}]. The stamp records the settings and the file lists'
    digest, so a changed /usr or setting rebuilds them."""
    os.makedirs(cache_dir, exist_ok=True)
    taken = set()
    disks = []
    for d in DISKS:
        files, total = pick_files(d["roots"], fill_bytes, taken)
        digest = hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]
        disks.append(dict(d, files=len(files), file_bytes=total, list_digest=digest,
                          file_list=files, raw=os.path.join(cache_dir, f"{d['name']}.raw"),
                          qcow2=os.path.join(cache_dir, f"{d['name']}.qcow2")))
    stamp_path = os.path.join(cache_dir, "stamp.json")
    want = {"size": size_bytes, "fill": fill_bytes, "version": 1,
            "disks": [[d["name"], d["list_digest"], d["file_bytes"]] for d in disks]}
    try:
        with open(stamp_path) as f:
            have = json.load(f)
    except (OSError, ValueError):
        have = None
    if have != want or not all(os.path.exists(d["qcow2"]) for d in disks):
        if os.path.exists(stamp_path):
            os.unlink(stamp_path)
        for d in disks:
            log(f"building disk {d['name']}: {d['files']} files, "
                f"{d['file_bytes'] / 2**30:.2f} GiB from {', '.join(d['roots'])}")
            build_image(d["raw"], d["label"], d["file_list"], size_bytes,
                        os.path.join(cache_dir, f"stage-{d['name']}"))
            run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", d["raw"], d["qcow2"]])
            os.chmod(d["qcow2"], 0o644)
        with open(stamp_path, "w") as f:
            json.dump(want, f)
    else:
        log(f"reusing the disk images in {cache_dir}")
    for d in disks:
        del d["file_list"]
    return disks


def sparse_copy(src, dst):
    run(["cp", "--sparse=always", src, dst])


# ---- the 5% rewrite ----------------------------------------------------------

def make_plan(seed, disk_bytes, fraction, min_blocks, max_blocks):
    """Non-overlapping 4 KiB-aligned regions with random lengths in
    [min_blocks, max_blocks] blocks, spread uniformly over the disk, that
    together cover `fraction` of it. Returns [(start_block, blocks)] sorted."""
    rng = random.Random(seed)
    nblocks = disk_bytes // BLOCK
    want = int(nblocks * fraction)
    lengths = []
    while sum(lengths) < want:
        lengths.append(min(rng.randint(min_blocks, max_blocks), want - sum(lengths)))
    rng.shuffle(lengths)
    # Uniform spread: sorted gap positions in the free space, then each
    # region placed after the previous ones (cannot overlap).
    free = nblocks - want
    gaps = sorted(rng.randint(0, free) for _ in lengths)
    plan, used = [], 0
    for gap, n in zip(gaps, lengths):
        plan.append((gap + used, n))
        used += n
    return plan


def plan_stats(plan, disk_bytes):
    """How much of the disk the rewrite touches at the granularities that
    matter: QEMU's dirty-bitmap granularity (64 KiB, the qcow2 cluster),
    Vireo's 256 KiB backup chunks and its former 4 MiB ones."""
    out = {"regions": len(plan), "bytes": sum(n for _, n in plan) * BLOCK}
    for name, gran in (("touched_64k_fraction", 64 << 10),
                       ("touched_256k_fraction", 256 << 10),
                       ("touched_4m_fraction", 4 << 20)):
        units = set()
        for start, n in plan:
            first = start * BLOCK // gran
            last = ((start + n) * BLOCK - 1) // gran
            units.update(range(first, last + 1))
        out[name] = round(len(units) / (disk_bytes // gran), 4)
    return out


def write_patch_data(plan, seed, path):
    """The new bytes of every region, back to back (random: incompressible,
    so every tool has to store them)."""
    rng = random.Random(f"{seed}-data")
    with open(path, "wb") as f:
        for _, n in plan:
            f.write(rng.randbytes(n * BLOCK))


def apply_patch(raw, plan, data_path):
    """The peers' side of the rewrite: same regions, same bytes, in place."""
    with open(raw, "r+b") as dst, open(data_path, "rb") as src:
        for start, n in plan:
            dst.seek(start * BLOCK)
            dst.write(src.read(n * BLOCK))
        dst.flush()
        os.fsync(dst.fileno())


def guest_script(disks):
    """A busybox shell script for the guest kit that applies every disk's
    plan from /patch/<name>.bin to the virtio disk carrying its ext4 label,
    so the writes go through QEMU's block layer (and its dirty bitmaps)."""
    lines = ["#!/bin/sh", "fail=0"]
    for d in disks:
        var = f"dev{d['name']}"
        lines.append(f"{var}=$(findfs LABEL={d['label']})")
        lines.append(f"[ -b \"${var}\" ] || {{ echo PATCH-NODEV {d['label']}; exit 1; }}")
        off = 0
        for start, n in d["plan"]:
            lines.append(f"dd if=/patch/{d['name']}.bin of=${var} bs={BLOCK} skip={off} "
                         f"seek={start} count={n} conv=notrunc 2>/dev/null || fail=1")
            off += n
    lines += ["sync", "echo 3 >/proc/sys/vm/drop_caches",
              "[ $fail = 0 ] && echo PATCH-$(echo OK) || echo PATCH-$(echo FAILED)"]
    return "\n".join(lines) + "\n"


def patched_initrd(kit_initrd, disks, workdir, out):
    """The guest kit's initrd plus an uncompressed cpio segment holding
    /patch/apply.sh and the patch data (the kernel unpacks concatenated
    archives; an uncompressed one must start 4-byte aligned)."""
    stage = os.path.join(workdir, "initrd-patch")
    os.makedirs(os.path.join(stage, "patch"))
    for d in disks:
        os.link(d["patch_data"], os.path.join(stage, "patch", f"{d['name']}.bin"))
    with open(os.path.join(stage, "patch", "apply.sh"), "w") as f:
        f.write(guest_script(disks))
    segment = os.path.join(workdir, "patch.cpio")
    with open(segment, "wb") as f:
        run(["sh", "-c", "find patch | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet"],
            cwd=stage, stdout=f)
    shutil.rmtree(stage)
    with open(out, "wb") as f:
        with open(kit_initrd, "rb") as k:
            shutil.copyfileobj(k, f)
        f.write(b"\0" * (-f.tell() % 512))
        with open(segment, "rb") as s:
            shutil.copyfileobj(s, f)
    os.unlink(segment)
    os.chmod(out, 0o644)
    return out
