// Fixed-window rate limiting over a shared counter store (Redis in production, a map in
// tests). A window of `window_seconds` starting at multiples of it; the count of calls in
// the current window is compared to `limit`. Plain C++.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace labelloop::gateway {

// Adds `n` to `key` and makes it expire after `ttl_seconds` when it was created by this
// call; returns the new value, or nullopt when the store cannot be reached.
class WindowCounter {
 public:
  struct Add {
    std::string key;
    int64_t n;
    int64_t ttl_seconds;
  };
  virtual ~WindowCounter() = default;
  virtual std::optional<int64_t> IncrementBy(const std::string& key, int64_t n,
                                             int64_t ttl_seconds) = 0;
  // IncrementBy for each, in order (a store may send them in one round trip).
  virtual std::vector<std::optional<int64_t>> IncrementAll(const std::vector<Add>& adds) {
    std::vector<std::optional<int64_t>> out;
    out.reserve(adds.size());
    for (const auto& a : adds) out.push_back(IncrementBy(a.key, a.n, a.ttl_seconds));
    return out;
  }
};

struct RateDecision {
  bool allowed = true;
  int64_t retry_after_seconds = 0;  // when !allowed: until the window ends (≥ 1)
  int64_t count = 0;
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Counts one call against `bucket`. limit <= 0 disables the limit. A counter store that
  // is down lets the call through (availability over strictness; the failure is logged
  // by the counter).
  virtual RateDecision Hit(const std::string& bucket, int64_t limit, int64_t window_seconds) = 0;
  // Whether Hit waits on the counter store (a caller on a polling thread hands it off).
  virtual bool Waits() const = 0;
  // Takes back one call that Hit let through in the current window and that will be
  // counted again (where that is possible before it reached the store).
  virtual void Refund(const std::string& /*bucket*/, int64_t /*window_seconds*/) {}
};

// One store round trip per call: exact across gateway replicas. For what must be strict
// everywhere at once (login attempts).
class StoreRateLimiter final : public RateLimiter {
 public:
  // `now` returns unix seconds (injected for tests).
  StoreRateLimiter(WindowCounter& counter, std::function<int64_t()> now);
  RateDecision Hit(const std::string& bucket, int64_t limit, int64_t window_seconds) override;
  bool Waits() const override { return true; }

 private:
  WindowCounter& counter_;
  std::function<int64_t()> now_;
};

// Counts calls in memory and adds them to the store every `flush_every` (one INCRBY per
// active bucket, all in one round trip), so a call never waits on the store. A replica decides on
// the shared count it last learned plus its own calls since: exact on one replica (also while the
// store is down); with several, each may let through what the others counted in the
// last flush interval before it learns of them.
class BatchedRateLimiter final : public RateLimiter {
 public:
  // flush_every 0: no flushing thread; the owner calls Flush (tests).
  BatchedRateLimiter(WindowCounter& counter, std::function<int64_t()> now,
                     std::chrono::milliseconds flush_every);
  ~BatchedRateLimiter() override;
  BatchedRateLimiter(const BatchedRateLimiter&) = delete;
  BatchedRateLimiter& operator=(const BatchedRateLimiter&) = delete;

  RateDecision Hit(const std::string& bucket, int64_t limit, int64_t window_seconds) override;
  bool Waits() const override { return false; }
  void Refund(const std::string& bucket, int64_t window_seconds) override;
  // Adds the calls counted since the last flush to the store and learns the shared
  // counts; forgets buckets of windows that are over.
  void Flush();

 private:
  struct Bucket {
    int64_t window = 0;          // index of the window (unix seconds / window_seconds)
    int64_t window_seconds = 0;  //
    int64_t shared = 0;          // the store's count when last learned (ours included)
    int64_t sending = 0;         // ours, on their way to the store
    int64_t pending = 0;         // ours, not yet sent
  };

  WindowCounter& counter_;
  std::function<int64_t()> now_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // by store key
  std::mutex flush_mu_;                              // one flush at a time
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread flusher_;
};

}  // namespace labelloop::gateway
