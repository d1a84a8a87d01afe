// labels.submitted drops are confirmed against the database before an item leaves the
// order: a message naming an unlabeled item (another deployment on the same Redis) drops
// nothing, and a database error keeps the batch for a retry.
#include "services/ranking/drop_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>

namespace labelloop::ranking {
namespace {

TEST(DropQueue, DropsOnlyItemsTheDatabaseSaysAreLabeled) {
  const std::set<int64_t> labeled_in_db = {10, 12};
  std::vector<std::pair<int64_t, int64_t>> dropped;
  DropQueue q(
      [&](const std::vector<int64_t>& ids) {
        std::vector<int64_t> out;
        for (int64_t id : ids) {
          if (labeled_in_db.count(id)) out.push_back(id);
        }
        return out;
      },
      [&](int64_t project, int64_t item) {
        dropped.emplace_back(project, item);
        return true;
      });
  q.Push(1, 10);
  q.Push(1, 11);  // not labeled: a stray message
  q.Push(2, 12);
  EXPECT_EQ(q.Flush(), 2u);
  EXPECT_EQ(dropped, (std::vector<std::pair<int64_t, int64_t>>{{1, 10}, {2, 12}}));
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_EQ(q.Flush(), 0u);
}

TEST(DropQueue, ADatabaseErrorKeepsTheBatchForTheNextTry) {
  bool db_up = false;
  int drops = 0;
  DropQueue q(
      [&](const std::vector<int64_t>& ids) {
        if (!db_up) throw std::runtime_error("connection refused");
        return ids;
      },
      [&](int64_t, int64_t) { return ++drops > 0; });
  q.Push(1, 5);
  q.Push(1, 6);
  EXPECT_THROW(q.Flush(), std::runtime_error);
  EXPECT_EQ(q.pending(), 2u);
  EXPECT_EQ(drops, 0);
  db_up = true;
  EXPECT_EQ(q.Flush(), 2u);
  EXPECT_EQ(q.pending(), 0u);
}

TEST(DropQueue, TheWorkerThreadConfirmsWhatIsPushedAndRetriesAfterAnError) {
  std::atomic<int> calls{0};
  std::atomic<int> drops{0};
  DropQueue q(
      [&](const std::vector<int64_t>& ids) {
        if (calls.fetch_add(1) == 0) throw std::runtime_error("first call fails");
        return ids;
      },
      [&](int64_t, int64_t) {
        drops.fetch_add(1);
        return true;
      });
  q.Start();
  for (int64_t i = 0; i < 100; ++i) q.Push(7, i);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (drops.load() < 100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  q.Stop();
  EXPECT_EQ(drops.load(), 100);
  EXPECT_GE(calls.load(), 2);
  EXPECT_EQ(q.pending(), 0u);
}

}  // namespace
}  // namespace labelloop::ranking
