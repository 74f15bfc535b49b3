#pragma once

#include <string>

#include "common/error.h"

namespace vireo {

class QmpClient;

// Takes a PNG screenshot of the VM's display through QMP screendump.
// QEMU may run as another user that cannot open our paths, so it writes into
// a memfd that we pass it (add-fd, filename /dev/fdset/N); the fd set is
// removed again before returning.
[[nodiscard]] Result<std::string> CaptureScreenPng(QmpClient& qmp);

}  // namespace vireo
