#include "services/gateway/rate_limit.hpp"

namespace labelloop::gateway {

RateLimiter::RateLimiter(WindowCounter& counter, std::function<int64_t()> now)
    : counter_(counter), now_(std::move(now)) {}

RateDecision RateLimiter::Hit(const std::string& bucket, int64_t limit, int64_t window_seconds) {
  RateDecision d;
  if (limit <= 0 || window_seconds <= 0) return d;
  const int64_t now = now_();
  const int64_t window = now / window_seconds;
  const std::string key = "labelloop:gateway:rl:" + bucket + ":" + std::to_string(window);
  auto count = counter_.Increment(key, window_seconds + 1);
  if (!count) return d;
  d.count = *count;
  if (*count > limit) {
    d.allowed = false;
    d.retry_after_seconds = std::max<int64_t>(1, (window + 1) * window_seconds - now);
  }
  return d;
}

}  // namespace labelloop::gateway
