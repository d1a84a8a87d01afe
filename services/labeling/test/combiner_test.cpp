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

// A leader whose call is done does not serve the queue on: the caller queued behind it
// runs its own batch on its own thread.
TEST(Combiner, ALeaderPassesTheLeadToTheNextQueuedCaller) {
  std::atomic<bool> second_started{false};
  std::mutex mu;
  std::map<int, std::thread::id> ran_on;
  IntCombiner combiner(1, 8, [&](const std::vector<IntCombiner::Call*>& batch) {
    if (batch[0]->request == 1) {
      while (!second_started) std::this_thread::yield();
      // Time for the second caller to queue behind this batch.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::lock_guard lock(mu);
    for (auto* c : batch) {
      ran_on[c->request] = std::this_thread::get_id();
      c->result = -c->request;
    }
  });
  std::thread::id first_id;
  std::thread::id second_id;
  int first_result = 0;
  int second_result = 0;
  std::thread first([&] {
    first_id = std::this_thread::get_id();
    first_result = combiner.Run(1);
  });
  // The first call is now its own leader, running its batch (it waits for the second).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::thread second([&] {
    second_id = std::this_thread::get_id();
    second_result = combiner.Run(2);
  });
  second_started = true;
  first.join();
  second.join();
  EXPECT_EQ(first_result, -1);
  EXPECT_EQ(second_result, -2);
  std::lock_guard lock(mu);
  EXPECT_EQ(ran_on[1], first_id);
  EXPECT_EQ(ran_on[2], second_id);
}

}  // namespace
}  // namespace labelloop::labeling
