#pragma once

// A point-in-time, read-only NBD view of every disk of an instance, taken
// for one backup, and the handover of the persistent dirty bitmaps that make
// the next backup incremental.
//
// Bitmap names: "<prefix><generation>", the prefix naming the store. Only
// the bitmap whose generation the store object "backup_bitmap" records for
// the last committed backup is trusted; any other bitmap with the prefix is
// a leftover of an interrupted backup and is removed.

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "core/nbd_chunk_reader.h"
#include "core/vm_engine.h"

namespace vireo {

struct ExportRequest {
  std::string name;    // disk name in the instance config
  std::string path;    // volume file or device
  std::string format;  // "qcow2" or "raw"
  // Bitmap tracking writes since the base backup; "" when there is no
  // usable base (the export then does a full read).
  std::string trusted_bitmap;
};

struct ExportedDisk {
  std::string name;
  NbdSource source;         // source.bitmap set when incremental
  std::string full_reason;  // why the bitmap is not used ("" if it is)
};

class DiskExport {
 public:
  virtual ~DiskExport() = default;  // tears the exports down
  virtual const std::vector<ExportedDisk>& disks() const = 0;
  // How consistent the point in time is, for the backup's note: a running
  // VM says whether its guest agent froze the filesystems ("filesystem-
  // consistent (...)" / "crash-consistent (...)"); "" for a stopped VM.
  virtual std::string consistency() const { return ""; }
  // Ends the exports, then hands the bitmaps over: after a committed backup
  // the new bitmap (added at the point in time) stays and the old ones go;
  // after a failure the old bitmap gets back the writes since the point in
  // time, so the last committed backup stays a valid base.
  virtual void Finish(bool committed) = 0;
};

struct ExportOptions {
  std::string work_dir;       // socket and fleecing images (created)
  std::string qemu_user;      // owner of work_dir files when QEMU drops root
  std::string bitmap_prefix;  // "vireo-<store key>-"
  std::string new_bitmap;     // prefix + new generation
};

// Running VM: QMP fleecing (temporary qcow2 over each disk, blockdev-backup
// sync=none in one transaction with the bitmap handover) exported by QEMU's
// NBD server. Leftovers of an interrupted backup are removed first. The
// guest's filesystems are frozen through its agent (when one answers) for
// the instant of the transaction only.
[[nodiscard]] Result<std::unique_ptr<DiskExport>> StartLiveExport(
    VmEngine* engine, const std::string& instance,
    const std::vector<ExportRequest>& disks, const ExportOptions& options);

// Stopped VM: one read-only qemu-nbd per disk (the instance lock keeps it
// stopped meanwhile).
[[nodiscard]] Result<std::unique_ptr<DiskExport>> StartOfflineExport(
    const std::vector<ExportRequest>& disks, const ExportOptions& options);

// Removes live leftovers (block jobs, exports, NBD server, fleecing nodes)
// of an interrupted backup from a running VM. Safe to call any time no
// backup of the VM runs.
void CleanLiveLeftovers(VmEngine* engine, const std::string& instance);

}  // namespace vireo
