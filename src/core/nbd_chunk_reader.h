#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "common/error.h"

namespace vireo {

// One disk's point-in-time view served over NBD (by QEMU's NBD server or a
// qemu-nbd), read with libnbd.
struct NbdSource {
  std::string socket;       // unix socket path
  std::string export_name;  // NBD export name
  // Dirty bitmap exported as meta context "qemu:dirty-bitmap:<bitmap>";
  // empty: full read (only all-zero chunks are skipped).
  std::string bitmap;
};

struct ChunkReadStats {
  uint64_t virtual_size = 0;
  uint64_t bytes_read = 0;      // bytes read from the source
  uint64_t chunks_read = 0;     // chunks handed to the writer
  uint64_t chunks_skipped = 0;  // clean (incremental) or all-zero chunks
};

// The `chunk_size` chunks of a disk that must be read: with a bitmap, those
// holding a dirty cluster; without, those not entirely zero (NBD block
// status).
[[nodiscard]] Result<std::vector<uint64_t>> ChunksToRead(
    const NbdSource& source, uint64_t chunk_size, uint64_t* virtual_size);

// Reads `chunks` with `connections` parallel NBD connections and Puts each
// into `writer` (whose current disk must be this one, cut into
// `chunk_size` chunks). Runs of adjacent chunks are read with one request
// of up to kMaxNbdRead bytes; each connection's thread then hashes and
// compresses what it read (inside PutChunk) while the others read, so
// reading and the CPU work overlap on every core. Memory: one kMaxNbdRead
// buffer per connection. `progress` gets bytes done/total (may be called
// from several threads, serialized).
inline constexpr uint64_t kMaxNbdRead = 4ull << 20;
[[nodiscard]] Result<ChunkReadStats> CopyChunks(
    const NbdSource& source, uint64_t virtual_size, uint64_t chunk_size,
    const std::vector<uint64_t>& chunks, backup::BackupWriter* writer,
    int connections, const backup::Progress& progress);

}  // namespace vireo
