#include "services/labeling/domain/combiner.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <vector>

namespace labelloop::labeling {
namespace {

using IntCombiner = Combiner<int, int>;

TEST(Combiner, ACallThatArrivesAloneRunsOnItsCallersThread) {
  std::thread::id ran_on;
  size_t batch_size = 0;
  IntCombiner combiner(2, 8, [&](const std::vector<IntCombiner::Call*>& batch) {
    ran_on = std::this_thread::get_id();
    batch_size = batch.size();
    for (auto* c : batch) c->result = c->request * 10;
  });
  EXPECT_EQ(combiner.Run(4), 40);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(batch_size, 1u);
  EXPECT_EQ(combiner.Run(5), 50);
}

// Many callers at once: each gets the answer to its own request, every request runs
// exactly once, never more batches at a time than leaders, never a batch over the
// limit, and calls are combined.
TEST(Combiner, ConcurrentCallersGetTheirOwnResultsFromCombinedBatches) {
  constexpr int kThreads = 24;
  constexpr int kCallsPerThread = 150;
  constexpr size_t kLeaders = 2;
  constexpr size_t kMaxBatch = 5;
  std::mutex seen_mu;
  std::map<int, int> runs_of;  // request → times it ran
  std::atomic<int> running{0};
  std::atomic<int> most_running{0};
  std::atomic<size_t> largest_batch{0};
  std::atomic<bool> over_limit{false};
  IntCombiner combiner(kLeaders, kMaxBatch, [&](const std::vector<IntCombiner::Call*>& batch) {
    const int now = ++running;
    int seen = most_running.load();
    while (now > seen && !most_running.compare_exchange_weak(seen, now)) {
    }
    if (batch.size() > kMaxBatch) over_limit = true;
    size_t big = largest_batch.load();
    while (batch.size() > big && !largest_batch.compare_exchange_weak(big, batch.size())) {
    }
    {
      std::lock_guard lock(seen_mu);
      for (auto* c : batch) ++runs_of[c->request];
    }
    // Long enough for other callers to queue up behind the running batches.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    for (auto* c : batch) c->result = c->request * 3 + 1;
    --running;
  });
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        const int request = t * kCallsPerThread + i;
        if (combiner.Run(request) != request * 3 + 1) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  ASSERT_EQ(runs_of.size(), static_cast<size_t>(kThreads * kCallsPerThread));
  for (const auto& [request, runs] : runs_of) ASSERT_EQ(runs, 1) << "request " << request;
  EXPECT_LE(most_running.load(), static_cast<int>(kLeaders));
  EXPECT_FALSE(over_limit.load());
  EXPECT_GT(largest_batch.load(), 1u);
}

// Submit returns at once when every leader slot is taken: the running leader runs the
// call, on its own thread, and hands the result over.
TEST(Combiner, ASubmitWhileTheLeaderIsBusyIsRunByTheLeader) {
  std::atomic<bool> release{false};
  std::atomic<bool> first_running{false};
  std::mutex mu;
  std::map<int, std::thread::id> ran_on;
  IntCombiner combiner(1, 8, [&](const std::vector<IntCombiner::Call*>& batch) {
    if (batch[0]->request == 1) {
      first_running = true;
      while (!release) std::this_thread::yield();
    }
    std::lock_guard lock(mu);
    for (auto* c : batch) {
      ran_on[c->request] = std::this_thread::get_id();
      c->result = -c->request;
    }
  });
  std::thread::id leader_id;
  std::atomic<int> first_result{0};
  std::thread leader([&] {
    leader_id = std::this_thread::get_id();
    combiner.Submit(1, [&](int r) { first_result = r; });
  });
  while (!first_running) std::this_thread::yield();
  std::atomic<int> second_result{0};
  std::thread::id second_done_on;
  combiner.Submit(2, [&](int r) {
    second_result = r;
    second_done_on = std::this_thread::get_id();
  });
  // Returned without running anything: the leader holds the only slot.
  EXPECT_EQ(second_result.load(), 0);
  release = true;
  leader.join();  // the leader returns once the queue is empty, the second call included
  EXPECT_EQ(first_result.load(), -1);
  EXPECT_EQ(second_result.load(), -2);
  EXPECT_EQ(second_done_on, leader_id);
  std::lock_guard lock(mu);
  EXPECT_EQ(ran_on[2], leader_id);
}

}  // namespace
}  // namespace labelloop::labeling
