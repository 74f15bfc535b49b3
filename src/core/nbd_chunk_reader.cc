#include "core/nbd_chunk_reader.h"

#include <libnbd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>

namespace vireo {

namespace {

constexpr uint32_t kStateHole = 1;  // base:allocation
constexpr uint32_t kStateZero = 2;
constexpr uint32_t kStateDirty = 1;  // qemu:dirty-bitmap:*
constexpr uint64_t kStatusWindow = 1ull << 30;

struct HandleCloser {
  void operator()(nbd_handle* h) const { nbd_close(h); }
};
using Handle = std::unique_ptr<nbd_handle, HandleCloser>;

Error NbdErr(const std::string& what) {
  const char* msg = nbd_get_error();
  return Error(ErrorCode::kUnavailable,
               what + ": " + (msg ? msg : "unknown libnbd error"));
}

std::string BitmapContext(const std::string& bitmap) {
  return "qemu:dirty-bitmap:" + bitmap;
}

Result<Handle> Connect(const NbdSource& s, bool meta) {
  Handle h(nbd_create());
  if (!h) return tl::unexpected(NbdErr("nbd_create"));
  if (meta) {
    if (nbd_add_meta_context(h.get(), "base:allocation") == -1)
      return tl::unexpected(NbdErr("nbd meta context"));
    if (!s.bitmap.empty() &&
        nbd_add_meta_context(h.get(), BitmapContext(s.bitmap).c_str()) == -1)
      return tl::unexpected(NbdErr("nbd meta context"));
  }
  if (nbd_set_export_name(h.get(), s.export_name.c_str()) == -1)
    return tl::unexpected(NbdErr("nbd export name"));
  if (nbd_connect_unix(h.get(), s.socket.c_str()) == -1)
    return tl::unexpected(
        NbdErr("connect to NBD export '" + s.export_name + "'"));
  return h;
}

// Extents of one block-status reply, per meta context.
struct StatusReply {
  std::string wanted;   // the context deciding what to read
  uint32_t mask = 0;    // flags meaning "must read" (dirty) ...
  bool invert = false;  // ... or, inverted, "may skip" (zero)
  uint64_t end = 0;     // how far the reply covered
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [start, end) to read
};

int OnExtents(void* user, const char* context, uint64_t offset,
              uint32_t* entries, size_t n, int* /*error*/) {
  auto* r = static_cast<StatusReply*>(user);
  if (r->wanted != context) return 0;
  uint64_t pos = offset;
  for (size_t i = 0; i + 1 < n; i += 2) {
    uint64_t len = entries[i];
    uint32_t flags = entries[i + 1];
    bool read = r->invert ? (flags & r->mask) == 0 : (flags & r->mask) != 0;
    if (read) r->ranges.emplace_back(pos, pos + len);
    pos += len;
  }
  r->end = std::max(r->end, pos);
  return 0;
}

}  // namespace

Result<std::vector<uint64_t>> ChunksToRead(const NbdSource& source,
                                           uint64_t chunk_size,
                                           uint64_t* virtual_size) {
  ASSIGN_OR_RETURN(Handle h, Connect(source, true));
  int64_t size = nbd_get_size(h.get());
  if (size < 0) return tl::unexpected(NbdErr("nbd size"));
  *virtual_size = static_cast<uint64_t>(size);
  uint64_t chunk_count = (*virtual_size + chunk_size - 1) / chunk_size;
  std::vector<bool> wanted(chunk_count, false);

  StatusReply reply;
  if (!source.bitmap.empty()) {
    if (nbd_can_meta_context(h.get(), BitmapContext(source.bitmap).c_str()) !=
        1)
      return Err(ErrorCode::kFailedPrecondition,
                 "the NBD export does not offer bitmap " + source.bitmap);
    reply.wanted = BitmapContext(source.bitmap);
    reply.mask = kStateDirty;
  } else if (nbd_can_meta_context(h.get(), "base:allocation") == 1) {
    reply.wanted = "base:allocation";
    reply.mask = kStateZero;
    reply.invert = true;
  } else {
    // No block status at all: every chunk is read.
    std::vector<uint64_t> all(chunk_count);
    for (uint64_t i = 0; i < chunk_count; ++i) all[i] = i;
    return all;
  }
  (void)kStateHole;
  uint64_t offset = 0;
  while (offset < *virtual_size) {
    uint64_t count = std::min(kStatusWindow, *virtual_size - offset);
    reply.end = offset;
    reply.ranges.clear();
    if (nbd_block_status(h.get(), count, offset,
                         nbd_extent_callback{OnExtents, &reply, nullptr},
                         0) == -1)
      return tl::unexpected(NbdErr("nbd block status"));
    for (auto [b, e] : reply.ranges) {
      e = std::min(e, *virtual_size);
      if (e <= b) continue;
      for (uint64_t c = b / chunk_size; c <= (e - 1) / chunk_size; ++c)
        wanted[c] = true;
    }
    if (reply.end <= offset)
      return Err(ErrorCode::kInternal, "NBD block status made no progress");
    offset = reply.end;
  }
  std::vector<uint64_t> out;
  for (uint64_t i = 0; i < chunk_count; ++i)
    if (wanted[i]) out.push_back(i);
  nbd_shutdown(h.get(), 0);
  return out;
}

Result<ChunkReadStats> CopyChunks(const NbdSource& source,
                                  uint64_t virtual_size, uint64_t chunk_size,
                                  const std::vector<uint64_t>& chunks,
                                  backup::BackupWriter* writer, int connections,
                                  const backup::Progress& progress) {
  ChunkReadStats stats;
  stats.virtual_size = virtual_size;
  uint64_t chunk_count = (virtual_size + chunk_size - 1) / chunk_size;
  stats.chunks_skipped = chunk_count - chunks.size();

  // Runs of adjacent chunks, each read with one NBD request: small chunks
  // must not mean small requests (every request is a round trip through
  // QEMU's NBD server).
  struct Run {
    uint64_t first;  // chunk index
    uint64_t count;
  };
  const uint64_t per_run = std::max<uint64_t>(1, kMaxNbdRead / chunk_size);
  std::vector<Run> runs;
  for (uint64_t c : chunks) {
    if (!runs.empty() && runs.back().first + runs.back().count == c &&
        runs.back().count < per_run)
      ++runs.back().count;
    else
      runs.push_back({c, 1});
  }
  uint64_t total = 0;
  for (uint64_t c : chunks)
    total += std::min(chunk_size, virtual_size - c * chunk_size);

  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;  // first error, progress calls
  std::optional<Error> first_error;
  auto fail = [&](Error e) {
    std::lock_guard lock(mu);
    if (!first_error) first_error = std::move(e);
    failed = true;
  };
  auto worker = [&]() {
    auto h = Connect(source, false);
    if (!h) return fail(h.error());
    std::vector<uint8_t> buf(per_run * chunk_size);
    while (!failed) {
      size_t i = next++;
      if (i >= runs.size()) break;
      const Run& run = runs[i];
      uint64_t off = run.first * chunk_size;
      uint64_t len = std::min(run.count * chunk_size, virtual_size - off);
      if (nbd_pread(h->get(), buf.data(), len, off, 0) == -1)
        return fail(NbdErr("read chunks " + std::to_string(run.first) + ".." +
                           std::to_string(run.first + run.count - 1)));
      for (uint64_t k = 0; k < run.count; ++k) {
        uint64_t pos = k * chunk_size;
        uint64_t n = std::min(chunk_size, len - pos);
        auto put = writer->PutChunk(run.first + k, {buf.data() + pos, n});
        if (!put) return fail(put.error());
      }
      uint64_t now = done += len;
      if (progress) {
        std::lock_guard lock(mu);
        progress(now, total);
      }
    }
    nbd_shutdown(h->get(), 0);
  };
  int n = std::clamp<int>(
      connections, 1, std::max<size_t>(1, std::min<size_t>(16, runs.size())));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (first_error) return tl::unexpected(*first_error);
  stats.bytes_read = done;
  stats.chunks_read = chunks.size();
  return stats;
}

}  // namespace vireo
