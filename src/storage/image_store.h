#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/error.h"

namespace vireo {

// One image file in the store.
struct StoredImage {
  std::string path;    // absolute
  std::string format;  // "qcow2" or "iso"
  uint64_t size = 0;   // bytes on disk
  uint64_t virtual_size = 0;
  std::string sha256;  // hex, of the stored file
};

// The files of the image store: <dir>/<id>.qcow2 or <dir>/<id>.iso. Knows
// nothing of names or records (ImageService keeps those). Every file appears
// whole or not at all: it is written under a temporary name, fsynced and
// renamed into place.
class ImageStore {
 public:
  // Creates dir if needed and removes temporary files a crash left behind.
  static Result<std::unique_ptr<ImageStore>> Create(std::string dir);

  const std::string& dir() const { return dir_; }

  // The format of a file as the store sees it: "iso" for ISO 9660 (which
  // qemu-img calls raw), otherwise qemu-img's answer. Never the file name.
  static Result<std::string> DetectFormat(const std::string& path);

  // Copies a user's file into the store as <id>: ISOs as they are, qcow2,
  // raw, vmdk and vdi converted to qcow2. Refuses other formats, images that
  // read other files (backing files, data files, vmdk extents) and images
  // qemu-img check finds damaged.
  [[nodiscard]] Result<StoredImage> Import(const std::string& source,
                                           const std::string& id);
  // Flattens a disk Vireo made (an instance's volume, possibly a linked
  // clone of a stored image) into a new qcow2 image <id>.
  [[nodiscard]] Result<StoredImage> ImportDisk(const std::string& disk,
                                               const std::string& disk_format,
                                               const std::string& id);
  // Writes a stored image to dest (which must not exist) in `format`
  // (qcow2, raw, vmdk, vdi); ISOs are copied as they are.
  [[nodiscard]] Status Export(const StoredImage& image, const std::string& dest,
                              const std::string& format);
  // Removes a stored file; absent is not an error.
  [[nodiscard]] Status Remove(const std::string& path);
  // True if path is a file directly in the store directory.
  bool Owns(const std::string& path) const;

 private:
  explicit ImageStore(std::string dir) : dir_(std::move(dir)) {}
  // Converts (or copies) into a temp file, fsyncs, renames to <id>.<ext>.
  Result<StoredImage> Store(const std::string& source,
                            const std::string& source_format,
                            const std::string& id, bool iso);

  std::string dir_;  // canonical
};

// Hex SHA-256 of a file (sha256sum).
Result<std::string> Sha256File(const std::string& path);

}  // namespace vireo
