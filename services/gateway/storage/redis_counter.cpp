#include "services/gateway/storage/redis_counter.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace labelloop::gateway {
namespace {

constexpr const char* kIncrScript =
    "local c = redis.call('INCRBY', KEYS[1], ARGV[2]) "
    "if c == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "return c";

}  // namespace

RedisWindowCounter::RedisWindowCounter(const redis::Endpoint& endpoint, int connections,
                                       std::string key_prefix)
    : key_prefix_(std::move(key_prefix)) {
  for (int i = 0; i < std::max(1, connections); ++i) {
    clients_.push_back(std::make_unique<redis::Client>(endpoint));
  }
}

std::optional<int64_t> RedisWindowCounter::IncrementBy(const std::string& key, int64_t n,
                                                       int64_t ttl_seconds) {
  auto& client = *clients_[next_.fetch_add(1) % clients_.size()];
  auto r = client.Command({"EVAL", kIncrScript, "1", key_prefix_ + key, std::to_string(ttl_seconds),
                           std::to_string(n)});
  if (!r.ok || r.is_nil) {
    // Logged once per 100 failures: Redis down would otherwise flood the log.
    if (failures_.fetch_add(1) % 100 == 0) {
      spdlog::warn("rate limiting: Redis unreachable, calls are let through");
    }
    return std::nullopt;
  }
  return r.integer;
}

std::vector<std::optional<int64_t>> RedisWindowCounter::IncrementAll(const std::vector<Add>& adds) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(adds.size());
  for (const auto& a : adds) {
    commands.push_back({"EVAL", kIncrScript, "1", key_prefix_ + a.key,
                        std::to_string(a.ttl_seconds), std::to_string(a.n)});
  }
  auto& client = *clients_[next_.fetch_add(1) % clients_.size()];
  const auto replies = client.Pipeline(commands);
  std::vector<std::optional<int64_t>> out;
  out.reserve(adds.size());
  for (const auto& r : replies) {
    if (r.ok && !r.is_nil) {
      out.emplace_back(r.integer);
    } else {
      out.emplace_back(std::nullopt);
    }
  }
  if (std::find(out.begin(), out.end(), std::nullopt) != out.end() &&
      failures_.fetch_add(1) % 100 == 0) {
    spdlog::warn("rate limiting: Redis unreachable, counting in this replica only");
  }
  return out;
}

}  // namespace labelloop::gateway
