#pragma once

// One logging facade for the project: spdlog's default logger.
#include <spdlog/spdlog.h>

namespace vireo {
// Sets the level from a name ("debug", "info", "warn", "error").
void InitLogging(const std::string& level);
}  // namespace vireo

#define LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
