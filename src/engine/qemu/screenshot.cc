#include "engine/qemu/screenshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "engine/qemu/qmp_client.h"

namespace vireo {

namespace {
constexpr std::chrono::seconds kScreendumpTimeout{20};
constexpr std::string_view kPngMagic = "\x89PNG\r\n\x1a\n";

Result<std::string> ReadAll(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoErr("screenshot: fstat");
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done,
                        static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoErr("screenshot: read");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}
}  // namespace

Result<std::string> CaptureScreenPng(QmpClient& qmp) {
  UniqueFd mem(::memfd_create("vireo-screenshot", MFD_CLOEXEC));
  if (!mem) return ErrnoErr("screenshot: memfd_create");
  // QEMU only hands out an fd from a set whose access mode matches the
  // open() it does (O_WRONLY for screendump); a memfd is O_RDWR, so pass a
  // write-only reopening of it.
  const std::string self = "/proc/self/fd/" + std::to_string(mem.get());
  UniqueFd wr(::open(self.c_str(), O_WRONLY | O_CLOEXEC));
  if (!wr) return ErrnoErr("screenshot: reopen memfd");

  ASSIGN_OR_RETURN(Json added, qmp.Execute("add-fd", Json::object(),
                                           std::chrono::seconds(10), wr.get()));
  if (!added.is_object() || !added.contains("fdset-id")) {
    return Err(ErrorCode::kInternal, "screenshot: add-fd reply has no fdset");
  }
  const int64_t fdset = added["fdset-id"].get<int64_t>();
  auto dumped = qmp.Execute(
      "screendump",
      {{"filename", "/dev/fdset/" + std::to_string(fdset)}, {"format", "png"}},
      kScreendumpTimeout);
  // Always drop the set, or QEMU keeps our memfd open for its lifetime.
  (void)qmp.Execute("remove-fd", {{"fdset-id", fdset}});
  TRY_CTX(dumped, "screenshot");
  ASSIGN_OR_RETURN(std::string png, ReadAll(mem.get()));
  if (png.compare(0, kPngMagic.size(), kPngMagic) != 0) {
    return Err(ErrorCode::kInternal, "screenshot: QEMU wrote no PNG (" +
                                         std::to_string(png.size()) +
                                         " bytes)");
  }
  return png;
}

}  // namespace vireo
