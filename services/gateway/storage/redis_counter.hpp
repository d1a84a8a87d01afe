// WindowCounter on Redis: an atomic INCRBY + EXPIRE (one Lua script) over a few
// connections, so rate limiting shares its counts between gateway replicas.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "common/redis/redis.hpp"
#include "services/gateway/rate_limit.hpp"

namespace labelloop::gateway {

class RedisWindowCounter final : public WindowCounter {
 public:
  // Keys are `key_prefix` + the limiter's key, so deployments (or test stacks) can share
  // one Redis without sharing counters.
  RedisWindowCounter(const redis::Endpoint& endpoint, int connections, std::string key_prefix);
  std::optional<int64_t> IncrementBy(const std::string& key, int64_t n,
                                     int64_t ttl_seconds) override;
  std::vector<std::optional<int64_t>> IncrementAll(const std::vector<Add>& adds) override;

 private:
  std::vector<std::unique_ptr<redis::Client>> clients_;
  std::atomic<size_t> next_{0};
  std::atomic<int64_t> failures_{0};
  std::string key_prefix_;
};

}  // namespace labelloop::gateway
