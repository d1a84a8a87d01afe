#include "services/gateway/rate_limit.hpp"

#include <gtest/gtest.h>

#include <map>

namespace labelloop::gateway {
namespace {

class MapCounter : public WindowCounter {
 public:
  std::optional<int64_t> Increment(const std::string& key, int64_t ttl) override {
    if (down) return std::nullopt;
    ttls[key] = ttl;
    return ++counts[key];
  }
  std::map<std::string, int64_t> counts;
  std::map<std::string, int64_t> ttls;
  bool down = false;
};

TEST(RateLimit, AllowsUpToTheLimitThenRefusesWithRetryAfter) {
  MapCounter c;
  int64_t now = 1000;  // window [960, 1020) for 60 s
  RateLimiter rl(c, [&] { return now; });
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.Hit("user:1", 5, 60).allowed);
  auto d = rl.Hit("user:1", 5, 60);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_seconds, 20);
  EXPECT_EQ(d.count, 6);
}

TEST(RateLimit, NewWindowStartsAfresh) {
  MapCounter c;
  int64_t now = 1000;
  RateLimiter rl(c, [&] { return now; });
  for (int i = 0; i < 3; ++i) rl.Hit("k", 2, 60);
  EXPECT_FALSE(rl.Hit("k", 2, 60).allowed);
  now = 1020;
  EXPECT_TRUE(rl.Hit("k", 2, 60).allowed);
}

TEST(RateLimit, BucketsAreIndependent) {
  MapCounter c;
  RateLimiter rl(c, [] { return int64_t{0}; });
  EXPECT_TRUE(rl.Hit("user:1", 1, 60).allowed);
  EXPECT_FALSE(rl.Hit("user:1", 1, 60).allowed);
  EXPECT_TRUE(rl.Hit("user:2", 1, 60).allowed);
  EXPECT_TRUE(rl.Hit("key:1", 1, 60).allowed);
}

TEST(RateLimit, KeysExpireAfterTheirWindow) {
  MapCounter c;
  RateLimiter rl(c, [] { return int64_t{0}; });
  rl.Hit("b", 10, 60);
  ASSERT_EQ(c.ttls.size(), 1u);
  EXPECT_EQ(c.ttls.begin()->second, 61);
}

TEST(RateLimit, ZeroLimitAndStoreDownLetCallsThrough) {
  MapCounter c;
  RateLimiter rl(c, [] { return int64_t{0}; });
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(rl.Hit("x", 0, 60).allowed);
  c.down = true;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(rl.Hit("y", 1, 60).allowed);
}

}  // namespace
}  // namespace labelloop::gateway
