#include "services/gateway/rate_limit.hpp"

#include <algorithm>
#include <vector>

namespace labelloop::gateway {
namespace {

std::string StoreKey(const std::string& bucket, int64_t window) {
  return "labelloop:gateway:rl:" + bucket + ":" + std::to_string(window);
}

RateDecision Decide(int64_t count, int64_t limit, int64_t now, int64_t window,
                    int64_t window_seconds) {
  RateDecision d;
  d.count = count;
  if (count > limit) {
    d.allowed = false;
    d.retry_after_seconds = std::max<int64_t>(1, (window + 1) * window_seconds - now);
  }
  return d;
}

}  // namespace

StoreRateLimiter::StoreRateLimiter(WindowCounter& counter, std::function<int64_t()> now)
    : counter_(counter), now_(std::move(now)) {}

RateDecision StoreRateLimiter::Hit(const std::string& bucket, int64_t limit,
                                   int64_t window_seconds) {
  if (limit <= 0 || window_seconds <= 0) return {};
  const int64_t now = now_();
  const int64_t window = now / window_seconds;
  auto count = counter_.IncrementBy(StoreKey(bucket, window), 1, window_seconds + 1);
  if (!count) return {};
  return Decide(*count, limit, now, window, window_seconds);
}

BatchedRateLimiter::BatchedRateLimiter(WindowCounter& counter, std::function<int64_t()> now,
                                       std::chrono::milliseconds flush_every)
    : counter_(counter), now_(std::move(now)) {
  if (flush_every.count() > 0) {
    flusher_ = std::thread([this, flush_every] {
      std::unique_lock lock(stop_mu_);
      while (!stop_cv_.wait_for(lock, flush_every, [this] { return stop_; })) {
        lock.unlock();
        Flush();
        lock.lock();
      }
    });
  }
}

BatchedRateLimiter::~BatchedRateLimiter() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  Flush();  // the last calls still count for the other replicas
}

RateDecision BatchedRateLimiter::Hit(const std::string& bucket, int64_t limit,
                                     int64_t window_seconds) {
  if (limit <= 0 || window_seconds <= 0) return {};
  const int64_t now = now_();
  const int64_t window = now / window_seconds;
  std::lock_guard lock(mu_);
  auto [it, added] = buckets_.try_emplace(StoreKey(bucket, window));
  Bucket& b = it->second;
  if (added) {
    b.window = window;
    b.window_seconds = window_seconds;
  }
  // A refused call is not counted: it costs nothing downstream.
  RateDecision d = Decide(b.shared + b.sending + b.pending + 1, limit, now, window, window_seconds);
  if (d.allowed) ++b.pending;
  return d;
}

void BatchedRateLimiter::Refund(const std::string& bucket, int64_t window_seconds) {
  if (window_seconds <= 0) return;
  std::lock_guard lock(mu_);
  auto it = buckets_.find(StoreKey(bucket, now_() / window_seconds));
  if (it != buckets_.end() && it->second.pending > 0) --it->second.pending;
}

void BatchedRateLimiter::Flush() {
  std::lock_guard flushing(flush_mu_);
  std::vector<WindowCounter::Add> sends;
  {
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      Bucket& b = it->second;
      if (b.pending > 0) {
        sends.push_back({it->first, b.pending, b.window_seconds + 1});
        b.sending += b.pending;
        b.pending = 0;
        ++it;
      } else if (now / b.window_seconds > b.window) {
        it = buckets_.erase(it);  // its window is over and nothing is left to send
      } else {
        ++it;
      }
    }
  }
  if (sends.empty()) return;
  const auto totals = counter_.IncrementAll(sends);
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < sends.size(); ++i) {
    const auto& s = sends[i];
    const auto& total = totals[i];
    auto it = buckets_.find(s.key);
    if (it == buckets_.end()) continue;
    Bucket& b = it->second;
    b.sending -= s.n;
    // The store's total includes what was just sent; while it is down, our own calls
    // still count here.
    b.shared = total ? std::max(*total, b.shared + s.n) : b.shared + s.n;
  }
}

}  // namespace labelloop::gateway
