#include "common/random.h"

#include <sys/random.h>

#include <cerrno>

namespace vireo {

void RandomBytes(unsigned char* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    // Blocks only before the kernel pool is initialised at early boot.
    ssize_t n = ::getrandom(buf + done, len - done, 0);
    if (n > 0) done += static_cast<size_t>(n);
  }
}

std::string RandomHex(size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string raw(bytes, '\0');
  RandomBytes(reinterpret_cast<unsigned char*>(raw.data()), bytes);
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace vireo
