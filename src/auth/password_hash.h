#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace vireo {

// argon2id in PHC string form ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"),
// with a fresh random 16-byte salt for every call. The parameters live in
// the string, so they can be raised later without breaking stored hashes.
[[nodiscard]] Result<std::string> HashPassword(std::string_view password);
// True when password matches the encoded hash. The comparison inside
// libargon2 is constant-time; a malformed hash never matches.
bool VerifyPassword(std::string_view encoded, std::string_view password);

}  // namespace vireo
