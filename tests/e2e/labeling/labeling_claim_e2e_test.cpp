// The claim+submit cycle of migration 0004 end to end: the oldest-first walk that starts
// at a frontier still hands out the oldest claimable item after many labels, after a
// release below the frontier, and (after the rescan interval) for an item committed late
// with an id below it; concurrent submits of one lease store exactly one label; the
// lease history holds one row per ended lease.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/e2e/labeling/labeling_harness.hpp"

namespace labelloop::e2e {
namespace {

using std::chrono::seconds;

#define START_OR_SKIP(h, ...) \
  if (!(h).Start(__VA_ARGS__)) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)"

grpc::Status Release(v1::LabelingService::Stub& stub, const v1::Lease& lease) {
  v1::ReleaseLeaseRequest req;
  req.set_item_id(lease.item_id());
  req.set_lease_token(lease.token());
  v1::ReleaseLeaseResponse resp;
  grpc::ClientContext ctx;
  return stub.ReleaseLease(&ctx, req, &resp);
}

TEST(LabelingClaim, OldestUnlabeledItemAfterManyLabelsReleasesAndLateItems) {
  LabelingHarness h;
  START_OR_SKIP(h, {"--claim-rescan-ms", "300"});
  auto project = h.CreateProject({"a", "b"});
  // Leave ids 1..1000 free, for an item "committed late" below the frontier.
  h.Count("SELECT setval('labeling.items_id_seq', 1000)");
  auto ids = h.InsertItems(project.id(), 400);
  ASSERT_GT(ids[0], 1000);
  auto& stub = h.stub();

  // "hold" keeps the two oldest items while "worker" labels 300 items one by one.
  v1::ClaimNextResponse held;
  ASSERT_TRUE(Claim(stub, project.id(), "hold", 2, &held).ok());
  ASSERT_EQ(held.items_size(), 2);
  EXPECT_EQ(held.items(0).lease().item_id(), ids[0]);
  EXPECT_EQ(held.items(1).lease().item_id(), ids[1]);
  for (int i = 0; i < 300; ++i) {
    v1::ClaimNextResponse c;
    ASSERT_TRUE(Claim(stub, project.id(), "worker", 1, &c).ok());
    ASSERT_EQ(c.items_size(), 1);
    ASSERT_EQ(c.items(0).lease().item_id(), ids[static_cast<size_t>(i) + 2]);
    ASSERT_TRUE(Submit(stub, c.items(0).lease(), {"a"}).ok());
  }
  // Released below the frontier of labeled items: it is the next item handed out.
  ASSERT_TRUE(Release(stub, held.items(1).lease()).ok());
  v1::ClaimNextResponse next;
  ASSERT_TRUE(Claim(stub, project.id(), "other", 1, &next).ok());
  ASSERT_EQ(next.items_size(), 1);
  EXPECT_EQ(next.items(0).lease().item_id(), ids[1]);
  ASSERT_TRUE(Release(stub, held.items(0).lease()).ok());
  ASSERT_TRUE(Claim(stub, project.id(), "third", 1, &next).ok());
  ASSERT_EQ(next.items_size(), 1);
  EXPECT_EQ(next.items(0).lease().item_id(), ids[0]);
  ASSERT_TRUE(Claim(stub, project.id(), "fourth", 1, &next).ok());
  ASSERT_EQ(next.items_size(), 1);
  EXPECT_EQ(next.items(0).lease().item_id(), ids[302]);
  ASSERT_TRUE(Release(stub, next.items(0).lease()).ok());

  // An item with an id far below the frontier (as when a long upload commits after a
  // later one): handed out, oldest first, once the walk starts from the beginning again.
  h.Count(
      "INSERT INTO labeling.items (id, project_id, external_id, text_payload, features) "
      "VALUES (500, " +
      std::to_string(project.id()) + ", 'late', 'late', ARRAY[1, 1]::real[]) RETURNING id");
  bool found = false;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        v1::ClaimNextResponse c;
        if (!Claim(stub, project.id(), "probe", 1, &c).ok() || c.items_size() != 1) return false;
        found = c.items(0).lease().item_id() == 500;
        if (!found) {
          EXPECT_TRUE(Release(stub, c.items(0).lease()).ok());
        }
        return found;
      },
      seconds(20)));

  // One history row per ended lease: 300 submitted, 4 released so far (+ the probes'),
  // and none for the leases still live.
  const std::string p = std::to_string(project.id());
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE outcome = 'submitted' AND "
                    "project_id = " +
                    p),
            300);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE outcome IS NULL OR "
                    "ended_at IS NULL"),
            0);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history h JOIN labeling.leases l "
                    "ON l.token = h.token"),
            0);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.items WHERE status = 'labeled' AND "
                    "project_id = " +
                    p),
            300);
}

TEST(LabelingClaim, RacingSubmitsOfOneLeaseStoreOneLabel) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto project = h.CreateProject({"a", "b"});
  auto ids = h.InsertItems(project.id(), 20);
  auto& stub = h.stub();
  for (int round = 0; round < 20; ++round) {
    v1::ClaimNextResponse c;
    ASSERT_TRUE(Claim(stub, project.id(), "ann", 1, &c).ok());
    ASSERT_EQ(c.items_size(), 1);
    const v1::Lease lease = c.items(0).lease();
    std::atomic<int> ok{0};
    std::atomic<int> ended{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        auto own = h.NewStub();
        v1::SubmitLabelResponse r;
        auto st = Submit(*own, lease, {t % 2 == 0 ? "a" : "b"}, &r);
        if (st.ok()) {
          ++ok;
        } else if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
                   st.error_message() == "lease_token: this lease has already ended (submitted)") {
          ++ended;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(ended.load(), 7);
  }
  const std::string p = std::to_string(project.id());
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.labels WHERE project_id = " + p), 20);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE project_id = " + p), 20);
  EXPECT_EQ(h.Count("SELECT sum(labeled) FROM labeling.label_counts WHERE project_id = " + p), 20);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.items WHERE status = 'labeled' AND "
                    "judgements = 1 AND consensus = (SELECT classes FROM labeling.labels l "
                    "WHERE l.item_id = items.id) AND project_id = " +
                    p),
            20);
}

}  // namespace
}  // namespace labelloop::e2e
