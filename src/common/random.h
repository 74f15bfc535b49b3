#pragma once

#include <cstddef>
#include <string>

namespace vireo {

// Fills buf with bytes from the kernel's CSPRNG (getrandom(2)); suitable for
// secrets, ids and MAC addresses alike.
void RandomBytes(unsigned char* buf, size_t len);
// `bytes` random bytes, lower-case hex encoded (2 x bytes characters).
std::string RandomHex(size_t bytes);

}  // namespace vireo
