// Fixed-window rate limiting over a shared counter store (Redis in production, a map in
// tests). A window of `window_seconds` starting at multiples of it; the count of calls in
// the current window is compared to `limit`. Plain C++.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace labelloop::gateway {

// Increments `key` and makes it expire after `ttl_seconds` when it was created by this
// call; returns the new value, or nullopt when the store cannot be reached.
class WindowCounter {
 public:
  virtual ~WindowCounter() = default;
  virtual std::optional<int64_t> Increment(const std::string& key, int64_t ttl_seconds) = 0;
};

struct RateDecision {
  bool allowed = true;
  int64_t retry_after_seconds = 0;  // when !allowed: until the window ends (≥ 1)
  int64_t count = 0;
};

class RateLimiter {
 public:
  // `now` returns unix seconds (injected for tests).
  RateLimiter(WindowCounter& counter, std::function<int64_t()> now);

  // Counts one call against `bucket`. limit <= 0 disables the limit. A counter store that
  // is down lets the call through (availability over strictness; the failure is logged
  // by the counter).
  RateDecision Hit(const std::string& bucket, int64_t limit, int64_t window_seconds);

 private:
  WindowCounter& counter_;
  std::function<int64_t()> now_;
};

}  // namespace labelloop::gateway
