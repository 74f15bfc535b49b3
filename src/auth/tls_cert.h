#pragma once

#include <string>

#include "common/error.h"

namespace vireo {

// Makes sure a TLS certificate and key exist at the given paths. When either
// is missing, generates an EC P-256 key and a self-signed certificate valid
// for 10 years with SAN localhost, 127.0.0.1 and ::1 (plus common_name when
// it looks like a host name). The key is written with mode 0600, both files
// atomically. Existing files are left alone.
[[nodiscard]] Status EnsureSelfSignedCertificate(
    const std::string& cert_path, const std::string& key_path,
    const std::string& common_name);

}  // namespace vireo
