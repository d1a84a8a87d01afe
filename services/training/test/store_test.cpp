// The job queue against a real PostgreSQL: concurrent claims take each job once, a lost
// lease stops every write of the old owner, attempts are bounded, cancel reaches the
// heartbeat.
#include "services/training/storage/store.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "common/migrate/migrate.hpp"
#include "common/testing/testing.hpp"

namespace labelloop::training {
std::vector<migrate::Migration> Migrations();

namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::AdminPgUrl();
    if (!url) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL)";
    db_ = std::make_unique<testing::TempDatabase>(*url);
    pool_ = std::make_unique<pg::Pool>(pg::PoolOptions{.url = db_->url(), .size = 6});
    migrate::Apply(*pool_, "training", Migrations());
    store_ = std::make_unique<storage::Store>(*pool_);
  }
  int64_t NewJob(int64_t project, int max_attempts = 3) {
    auto id = store_->CreateJob(project, {{"epochs", 2}}, 2, max_attempts, "manual", 0, nullptr);
    EXPECT_TRUE(id.has_value());
    return id.value_or(0);
  }
  void ExpireLease(int64_t job) {
    pool_->Run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec_params(
          "UPDATE training.jobs SET lease_until = now() - interval '1 second' "
          "WHERE id = $1",
          job);
      tx.commit();
      return 0;
    });
  }

  std::unique_ptr<testing::TempDatabase> db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(StoreTest, ConcurrentClaimsTakeEachJobOnce) {
  std::set<int64_t> created;
  for (int p = 1; p <= 30; ++p) created.insert(NewJob(p));
  std::mutex mu;
  std::multiset<int64_t> claimed;
  std::vector<std::thread> threads;
  for (int w = 0; w < 5; ++w) {
    threads.emplace_back([&, w] {
      while (auto job = store_->Claim("w" + std::to_string(w), 60)) {
        EXPECT_EQ(job->attempts, 1);
        std::lock_guard lock(mu);
        claimed.insert(job->id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(claimed.size(), created.size());
  EXPECT_EQ(std::set<int64_t>(claimed.begin(), claimed.end()), created);
}

TEST_F(StoreTest, OneLiveJobPerProject) {
  const int64_t first = NewJob(7);
  int64_t live = 0;
  EXPECT_FALSE(store_->CreateJob(7, {}, 2, 3, "auto", 0, &live).has_value());
  EXPECT_EQ(live, first);
}

TEST_F(StoreTest, ALostLeaseStopsTheOldOwnersWrites) {
  const int64_t job = NewJob(1);
  ASSERT_TRUE(store_->Claim("a", 60));
  EXPECT_FALSE(store_->Claim("b", 60));  // held
  ExpireLease(job);
  auto taken = store_->Claim("b", 60);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->attempts, 2);
  EXPECT_EQ(store_->Renew(job, "a", 60), storage::Lease::kLost);
  EXPECT_FALSE(store_->RecordEpoch(job, "a", {1, 0.5, 0.5, 0.5, 0.5}));
  EXPECT_FALSE(store_->Finish(job, "a", "FAILED", "x"));
  EXPECT_FALSE(store_->Release(job, "a"));
  EXPECT_EQ(store_->Renew(job, "b", 60), storage::Lease::kHeld);
  EXPECT_TRUE(store_->RecordEpoch(job, "b", {1, 0.5, 0.5, 0.5, 0.5}));
  EXPECT_EQ(store_->GetJob(job)->epoch, 1);
}

TEST_F(StoreTest, AttemptsAreBounded) {
  const int64_t job = NewJob(1, /*max_attempts=*/2);
  ASSERT_TRUE(store_->Claim("a", 60));
  EXPECT_EQ(store_->RetryOrFail(job, "a", "database hiccup"), "PENDING");
  ASSERT_TRUE(store_->Claim("a", 60));
  EXPECT_EQ(store_->RetryOrFail(job, "a", "database hiccup"), "FAILED");
  auto row = store_->GetJob(job);
  EXPECT_EQ(row->message, "gave up after 2 attempts: database hiccup");
  EXPECT_FALSE(store_->Claim("a", 60));
}

TEST_F(StoreTest, ReleaseDoesNotCountTheAttempt) {
  const int64_t job = NewJob(1);
  ASSERT_TRUE(store_->Claim("a", 60));
  EXPECT_TRUE(store_->Release(job, "a"));
  auto row = store_->GetJob(job);
  EXPECT_EQ(row->state, "PENDING");
  EXPECT_EQ(row->attempts, 0);
  EXPECT_EQ(row->claimed_by, "");
}

TEST_F(StoreTest, CancelReachesTheHeartbeat) {
  const int64_t pending = NewJob(1);
  EXPECT_EQ(store_->Cancel(pending)->state, "CANCELLED");
  const int64_t running = NewJob(2);
  ASSERT_TRUE(store_->Claim("a", 60));
  auto row = store_->Cancel(running);
  EXPECT_EQ(row->state, "RUNNING");
  EXPECT_TRUE(row->cancel_requested);
  EXPECT_EQ(store_->Renew(running, "a", 60), storage::Lease::kCancelRequested);
  // A worker that died after the cancel: the reaper ends the job as CANCELLED.
  ExpireLease(running);
  auto reaped = store_->ReapExpired();
  ASSERT_EQ(reaped.size(), 1u);
  EXPECT_EQ(reaped[0].state, "CANCELLED");
}

}  // namespace
}  // namespace labelloop::training
