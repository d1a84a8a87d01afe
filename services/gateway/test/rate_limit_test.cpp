#include "services/gateway/rate_limit.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace labelloop::gateway {
namespace {

class MapCounter : public WindowCounter {
 public:
  std::optional<int64_t> IncrementBy(const std::string& key, int64_t n, int64_t ttl) override {
    ++round_trips;
    if (down) return std::nullopt;
    ttls[key] = ttl;
    return counts[key] += n;
  }
  std::map<std::string, int64_t> counts;
  std::map<std::string, int64_t> ttls;
  bool down = false;
  int round_trips = 0;
};

TEST(RateLimit, AllowsUpToTheLimitThenRefusesWithRetryAfter) {
  MapCounter c;
  int64_t now = 1000;  // window [960, 1020) for 60 s
  StoreRateLimiter rl(c, [&] { return now; });
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.Hit("user:1", 5, 60).allowed);
  auto d = rl.Hit("user:1", 5, 60);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_seconds, 20);
  EXPECT_EQ(d.count, 6);
}

TEST(RateLimit, NewWindowStartsAfresh) {
  MapCounter c;
  int64_t now = 1000;
  StoreRateLimiter rl(c, [&] { return now; });
  for (int i = 0; i < 3; ++i) rl.Hit("k", 2, 60);
  EXPECT_FALSE(rl.Hit("k", 2, 60).allowed);
  now = 1020;
  EXPECT_TRUE(rl.Hit("k", 2, 60).allowed);
}

TEST(RateLimit, BucketsAreIndependent) {
  MapCounter c;
  StoreRateLimiter rl(c, [] { return int64_t{0}; });
  EXPECT_TRUE(rl.Hit("user:1", 1, 60).allowed);
  EXPECT_FALSE(rl.Hit("user:1", 1, 60).allowed);
  EXPECT_TRUE(rl.Hit("user:2", 1, 60).allowed);
  EXPECT_TRUE(rl.Hit("key:1", 1, 60).allowed);
}

TEST(RateLimit, KeysExpireAfterTheirWindow) {
  MapCounter c;
  StoreRateLimiter rl(c, [] { return int64_t{0}; });
  rl.Hit("b", 10, 60);
  ASSERT_EQ(c.ttls.size(), 1u);
  EXPECT_EQ(c.ttls.begin()->second, 61);
}

TEST(RateLimit, ZeroLimitAndStoreDownLetCallsThrough) {
  MapCounter c;
  StoreRateLimiter rl(c, [] { return int64_t{0}; });
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(rl.Hit("x", 0, 60).allowed);
  c.down = true;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(rl.Hit("y", 1, 60).allowed);
}

// BatchedRateLimiter: flush_every 0, so the test decides when counts reach the store.

TEST(BatchedRateLimit, OneReplicaIsExactAndNeverWaitsOnTheStore) {
  MapCounter c;
  int64_t now = 1000;  // window [960, 1020) for 60 s
  BatchedRateLimiter rl(
      c, [&] { return now; }, std::chrono::milliseconds(0));
  EXPECT_FALSE(rl.Waits());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.Hit("user:1", 5, 60).allowed);
  EXPECT_EQ(c.round_trips, 0);
  rl.Flush();
  EXPECT_EQ(c.round_trips, 1);  // one INCRBY for the three calls
  EXPECT_EQ(c.counts.begin()->second, 3);
  EXPECT_EQ(c.ttls.begin()->second, 61);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(rl.Hit("user:1", 5, 60).allowed);
  auto d = rl.Hit("user:1", 5, 60);  // counted: 3 in the store + 2 not sent yet
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_seconds, 20);
  EXPECT_EQ(d.count, 6);
  rl.Flush();
  EXPECT_EQ(c.counts.begin()->second, 5);  // the refused call is not counted
  EXPECT_FALSE(rl.Hit("user:1", 5, 60).allowed);
}

TEST(BatchedRateLimit, ReplicasLearnEachOthersCountsAtTheirNextFlush) {
  MapCounter c;
  int64_t now = 0;
  BatchedRateLimiter a(
      c, [&] { return now; }, std::chrono::milliseconds(0));
  BatchedRateLimiter b(
      c, [&] { return now; }, std::chrono::milliseconds(0));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(a.Hit("user:1", 6, 60).allowed);
  a.Flush();
  EXPECT_TRUE(b.Hit("user:1", 6, 60).allowed);  // b has not learned of a's calls yet
  b.Flush();                                    // the store has 5; b learns it
  EXPECT_TRUE(b.Hit("user:1", 6, 60).allowed);
  EXPECT_FALSE(b.Hit("user:1", 6, 60).allowed);
  EXPECT_TRUE(a.Hit("user:1", 6, 60).allowed);  // a decides on 4 + 1: the bounded overshoot
  b.Flush();
  a.Flush();  // a learns the shared 7
  EXPECT_FALSE(a.Hit("user:1", 6, 60).allowed);
  EXPECT_EQ(c.counts.begin()->second, 7);
}

TEST(BatchedRateLimit, ARefundedCallIsNotCounted) {
  MapCounter c;
  BatchedRateLimiter rl(
      c, [] { return int64_t{0}; }, std::chrono::milliseconds(0));
  EXPECT_TRUE(rl.Hit("k", 2, 60).allowed);
  rl.Refund("k", 60);  // e.g. admitted again on the slow path, which counts it
  EXPECT_TRUE(rl.Hit("k", 2, 60).allowed);
  EXPECT_TRUE(rl.Hit("k", 2, 60).allowed);
  EXPECT_FALSE(rl.Hit("k", 2, 60).allowed);
  rl.Flush();
  EXPECT_EQ(c.counts.begin()->second, 2);
  rl.Refund("k", 60);  // already in the store: nothing to take back
  EXPECT_FALSE(rl.Hit("k", 2, 60).allowed);
}

TEST(BatchedRateLimit, StoreDownStillCountsThisReplicasCalls) {
  MapCounter c;
  c.down = true;
  BatchedRateLimiter rl(
      c, [] { return int64_t{0}; }, std::chrono::milliseconds(0));
  EXPECT_TRUE(rl.Hit("k", 2, 60).allowed);
  rl.Flush();
  EXPECT_TRUE(rl.Hit("k", 2, 60).allowed);
  EXPECT_FALSE(rl.Hit("k", 2, 60).allowed);
  rl.Flush();
  EXPECT_FALSE(rl.Hit("k", 2, 60).allowed);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(rl.Hit("off", 0, 60).allowed);
}

TEST(BatchedRateLimit, NewWindowStartsAfreshAndOldBucketsAreForgotten) {
  MapCounter c;
  int64_t now = 1000;
  BatchedRateLimiter rl(
      c, [&] { return now; }, std::chrono::milliseconds(0));
  EXPECT_TRUE(rl.Hit("k", 1, 60).allowed);
  EXPECT_FALSE(rl.Hit("k", 1, 60).allowed);
  now = 1020;
  EXPECT_TRUE(rl.Hit("k", 1, 60).allowed);
  rl.Flush();
  EXPECT_EQ(c.counts.size(), 2u);  // one key per window
  const int before = c.round_trips;
  now = 1100;
  rl.Flush();  // nothing pending: no store call, the finished windows are dropped
  EXPECT_EQ(c.round_trips, before);
  EXPECT_TRUE(rl.Hit("k", 1, 60).allowed);
}

TEST(BatchedRateLimit, TheFlushingThreadSendsCountsAndTheLastOnesOnDestruction) {
  MapCounter c;
  std::mutex mu;  // MapCounter is not thread-safe; the flusher runs on its own thread
  class Locked : public WindowCounter {
   public:
    Locked(MapCounter& c, std::mutex& mu) : c_(c), mu_(mu) {}
    std::optional<int64_t> IncrementBy(const std::string& k, int64_t n, int64_t t) override {
      std::lock_guard lock(mu_);
      return c_.IncrementBy(k, n, t);
    }

   private:
    MapCounter& c_;
    std::mutex& mu_;
  } locked(c, mu);
  {
    BatchedRateLimiter rl(
        locked, [] { return int64_t{0}; }, std::chrono::milliseconds(5));
    EXPECT_TRUE(rl.Hit("k", 100, 60).allowed);
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard lock(mu);
        if (!c.counts.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::lock_guard lock(mu);
    ASSERT_EQ(c.counts.size(), 1u);
    EXPECT_EQ(c.counts.begin()->second, 1);
  }
  {
    BatchedRateLimiter rl(
        locked, [] { return int64_t{0}; }, std::chrono::milliseconds(60000));
    EXPECT_TRUE(rl.Hit("k", 100, 60).allowed);
    EXPECT_TRUE(rl.Hit("k", 100, 60).allowed);
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(c.counts.begin()->second, 3);
}

}  // namespace
}  // namespace labelloop::gateway
