// Process-wide logging setup on spdlog: level, plain or JSON-lines format, and the
// service name plus the current request id (when there is one) on every line.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace labelloop::log {

enum class Format { kPlain, kJson };

// Installs the default logger writing to stderr (or to `sink` when given, for tests).
// `level` is one of trace, debug, info, warn, error, critical, off.
void Setup(const std::string& service, const std::string& level, Format format,
           spdlog::sink_ptr sink = nullptr);

// The request id logged on this thread; empty when none.
const std::string& CurrentRequestId();

// Sets the request id logged by this thread for the guard's lifetime.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(std::string request_id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  std::string previous_;
};

// Escapes text for a JSON string body (no surrounding quotes).
std::string JsonEscape(std::string_view text);

}  // namespace labelloop::log
