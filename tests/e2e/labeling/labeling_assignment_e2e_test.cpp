// Assignment end to end: 32 concurrent annotators label a project to the end with no
// item ever leased to two at once; lease expiry, reload, stale submit, skip, renew,
// release; judgements_per_item = 2; ranking order and its fallback.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/redis/redis.hpp"
#include "labelloop/v1/ranking.grpc.pb.h"
#include "tests/e2e/labeling/labeling_harness.hpp"

namespace labelloop::e2e {
namespace {

using std::chrono::seconds;

// Waits (on the clock, polling) until a lease's expiry time has passed.
void WaitPast(const google::protobuf::Timestamp& ts) {
  const auto deadline = std::chrono::system_clock::time_point(std::chrono::seconds(ts.seconds()) +
                                                              std::chrono::nanoseconds(ts.nanos()) +
                                                              std::chrono::milliseconds(20));
  ASSERT_TRUE(testing::WaitFor([&] { return std::chrono::system_clock::now() > deadline; },
                               std::chrono::seconds(30)));
}

#define START_OR_SKIP(h, ...) \
  if (!(h).Start(__VA_ARGS__)) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)"

TEST(LabelingAssignment, ThirtyTwoAnnotatorsLabelEveryItemExactlyOnce) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto project = h.CreateProject({"cat", "dog", "bird"});
  const int kItems = 800;
  auto ids = h.InsertItems(project.id(), kItems);

  // Count the events on the bus while the annotators work.
  std::atomic<int> events{0};
  redis::Subscriber sub(
      {.host = h.redis().first, .port = h.redis().second}, {"labelloop.labels.submitted"},
      [&](const std::string&, const std::string& payload) {
        if (payload.find("\"project_id\":" + std::to_string(project.id())) != std::string::npos) {
          ++events;
        }
      });
  sub.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return sub.connected(); }, seconds(10)));

  std::atomic<int> submitted{0};
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<std::string> errors;
  // Labels each annotator had accepted; an annotator whose first claim came after every
  // item was taken has none (and no row in the stats).
  std::map<std::string, int64_t> accepted;
  std::vector<std::thread> annotators;
  for (int a = 0; a < 32; ++a) {
    annotators.emplace_back([&, a] {
      auto stub = h.NewStub();
      const std::string who = "annotator-" + std::to_string(a);
      const std::vector<std::string> classes = {"cat", "dog", "bird"};
      for (int round = 0;; ++round) {
        v1::ClaimNextResponse claim;
        auto st = Claim(*stub, project.id(), who, 1 + (a + round) % 3, &claim);
        if (!st.ok()) {
          std::lock_guard lock(mu);
          errors.push_back("claim: " + st.error_message());
          ++failures;
          return;
        }
        if (claim.items_size() == 0) return;  // nothing left
        for (const auto& item : claim.items()) {
          auto s = Submit(*stub, item.lease(), {classes[item.lease().item_id() % 3]});
          if (s.ok()) {
            ++submitted;
            std::lock_guard lock(mu);
            ++accepted[who];
          } else {
            std::lock_guard lock(mu);
            errors.push_back("submit: " + s.error_message());
            ++failures;
          }
        }
      }
    });
  }
  for (auto& t : annotators) t.join();
  ASSERT_EQ(failures.load(), 0) << (errors.empty() ? "" : errors.front());
  EXPECT_EQ(submitted.load(), kItems);

  ExpectEveryItemLabeledOnce(h, project.id(), kItems);
  EXPECT_TRUE(testing::WaitFor([&] { return events.load() >= kItems; }, seconds(20)))
      << events.load();

  v1::GetStatsRequest sreq;
  sreq.set_project_id(project.id());
  v1::ProjectStats stats;
  grpc::ClientContext ctx;
  ASSERT_TRUE(h.stub().GetStats(&ctx, sreq, &stats).ok());
  EXPECT_EQ(stats.total(), kItems);
  EXPECT_EQ(stats.labeled(), kItems);
  EXPECT_EQ(stats.unlabeled(), 0);
  EXPECT_EQ(stats.under_lease(), 0);
  std::map<std::string, int64_t> per_annotator;
  for (const auto& a : stats.per_annotator()) per_annotator[a.annotator()] = a.labels();
  EXPECT_EQ(per_annotator, accepted);
  EXPECT_GE(accepted.size(), 2u) << "the annotators did not work concurrently";
  EXPECT_EQ(stats.labels_last_hour(), kItems);
  int64_t per_class = 0;
  for (const auto& c : stats.per_class()) per_class += c.items();
  EXPECT_EQ(per_class, kItems);
  sub.Stop();
}

TEST(LabelingAssignment, LeaseExpiryReloadStaleSubmitSkipRenewRelease) {
  LabelingHarness h;
  START_OR_SKIP(h, {"--lease-seconds", "1"});
  auto project = h.CreateProject({"yes", "no"});
  auto ids = h.InsertItems(project.id(), 4);
  auto& stub = h.stub();

  // A claims the oldest item; a reload returns the same item and token.
  v1::ClaimNextResponse a1;
  ASSERT_TRUE(Claim(stub, project.id(), "ann", 1, &a1).ok());
  ASSERT_EQ(a1.items_size(), 1);
  EXPECT_EQ(a1.items(0).lease().item_id(), ids[0]);
  EXPECT_EQ(a1.order(), "oldest_first");
  v1::ClaimNextResponse reload;
  ASSERT_TRUE(Claim(stub, project.id(), "ann", 1, &reload).ok());
  ASSERT_EQ(reload.items_size(), 1);
  EXPECT_EQ(reload.items(0).lease().token(), a1.items(0).lease().token());
  EXPECT_TRUE(reload.items(0).already_held());

  // B meanwhile gets the next item, never A's.
  v1::ClaimNextResponse b1;
  ASSERT_TRUE(Claim(stub, project.id(), "bob", 1, &b1).ok());
  ASSERT_EQ(b1.items_size(), 1);
  EXPECT_EQ(b1.items(0).lease().item_id(), ids[1]);

  // A's lease expires mid-work; C claims and gets A's item (oldest first).
  const v1::Lease a_lease = a1.items(0).lease();
  WaitPast(a_lease.expires_at());
  v1::ClaimNextResponse c1;
  ASSERT_TRUE(Claim(stub, project.id(), "cy", 1, &c1).ok());
  ASSERT_EQ(c1.items_size(), 1);
  EXPECT_EQ(c1.items(0).lease().item_id(), ids[0]);
  // A's stale submit is refused: someone claimed the item since.
  auto stale = Submit(stub, a_lease, {"yes"});
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(stale.error_message().find("expired and another annotator has claimed the item"),
            std::string::npos)
      << stale.error_message();
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE outcome = 'expired' AND "
                    "token = '" +
                    a_lease.token() + "'"),
            1);

  // B's lease also expired, but nobody claimed B's item since: B's late submit is accepted.
  const v1::Lease b_lease = b1.items(0).lease();
  WaitPast(b_lease.expires_at());
  v1::SubmitLabelResponse late;
  auto late_status = Submit(stub, b_lease, {"no"}, &late);
  ASSERT_TRUE(late_status.ok()) << late_status.error_message();
  EXPECT_EQ(late.item_status(), "labeled");

  // C renews (the lease moves forward) and submits.
  const v1::Lease c_lease = c1.items(0).lease();
  v1::RenewLeaseRequest rr;
  rr.set_item_id(c_lease.item_id());
  rr.set_lease_token(c_lease.token());
  v1::Lease renewed;
  {
    grpc::ClientContext ctx;
    auto st = stub.RenewLease(&ctx, rr, &renewed);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_GE(renewed.expires_at().seconds(), c_lease.expires_at().seconds());
  ASSERT_TRUE(Submit(stub, renewed, {"yes"}).ok());
  // A second submit with the same lease is refused: the lease ended.
  auto again = Submit(stub, renewed, {"yes"});
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(again.error_message(), "lease_token: this lease has already ended (submitted)");

  // D skips item 3 with a reason; D is not offered it again, E is.
  v1::ClaimNextResponse d1;
  ASSERT_TRUE(Claim(stub, project.id(), "dee", 1, &d1).ok());
  ASSERT_EQ(d1.items_size(), 1);
  EXPECT_EQ(d1.items(0).lease().item_id(), ids[2]);
  v1::SkipRequest skip;
  skip.set_item_id(ids[2]);
  skip.set_lease_token(d1.items(0).lease().token());
  skip.set_reason("blurry");
  {
    grpc::ClientContext ctx;
    v1::SkipResponse sr;
    ASSERT_TRUE(stub.Skip(&ctx, skip, &sr).ok());
  }
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.skips WHERE reason = 'blurry' AND "
                    "annotator = 'dee' AND item_id = " +
                    std::to_string(ids[2])),
            1);
  v1::ClaimNextResponse d2;
  ASSERT_TRUE(Claim(stub, project.id(), "dee", 1, &d2).ok());
  ASSERT_EQ(d2.items_size(), 1);
  EXPECT_EQ(d2.items(0).lease().item_id(), ids[3]);
  // D releases item 4; E then gets item 3 (oldest first), F gets item 4.
  v1::ReleaseLeaseRequest rel;
  rel.set_item_id(ids[3]);
  rel.set_lease_token(d2.items(0).lease().token());
  {
    grpc::ClientContext ctx;
    v1::ReleaseLeaseResponse rr2;
    ASSERT_TRUE(stub.ReleaseLease(&ctx, rel, &rr2).ok());
  }
  v1::ClaimNextResponse e1;
  ASSERT_TRUE(Claim(stub, project.id(), "eve", 2, &e1).ok());
  ASSERT_EQ(e1.items_size(), 2);
  EXPECT_EQ(e1.items(0).lease().item_id(), ids[2]);
  EXPECT_EQ(e1.items(1).lease().item_id(), ids[3]);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE outcome = 'released'"), 1);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE outcome = 'skipped'"), 1);
}

TEST(LabelingAssignment, TwoJudgementsPerItem) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto project = h.CreateProject({"cat", "dog"}, "single", 2);
  auto ids = h.InsertItems(project.id(), 3);
  auto& stub = h.stub();
  v1::ClaimNextResponse a, b, c;
  ASSERT_TRUE(Claim(stub, project.id(), "ann", 3, &a).ok());
  ASSERT_TRUE(Claim(stub, project.id(), "bob", 3, &b).ok());
  ASSERT_TRUE(Claim(stub, project.id(), "cy", 3, &c).ok());
  ASSERT_EQ(a.items_size(), 3);
  ASSERT_EQ(b.items_size(), 3);  // two distinct annotators may hold one item
  EXPECT_EQ(c.items_size(), 0);  // but not a third
  for (const auto& it : a.items()) {
    v1::SubmitLabelResponse r;
    ASSERT_TRUE(Submit(stub, it.lease(), {"cat"}, &r).ok());
    EXPECT_EQ(r.item_status(), "unlabeled");
    EXPECT_EQ(r.judgements(), 1);
  }
  // ann labeled everything already: nothing is offered to ann again.
  v1::ClaimNextResponse a2;
  ASSERT_TRUE(Claim(stub, project.id(), "ann", 3, &a2).ok());
  EXPECT_EQ(a2.items_size(), 0);
  v1::SubmitLabelResponse r1, r2;
  ASSERT_TRUE(Submit(stub, b.items(0).lease(), {"cat"}, &r1).ok());
  EXPECT_EQ(r1.item_status(), "labeled");
  EXPECT_EQ(r1.judgements(), 2);
  EXPECT_EQ(std::vector<std::string>(r1.consensus().begin(), r1.consensus().end()),
            std::vector<std::string>{"cat"});
  EXPECT_FALSE(r1.consensus_tie());
  ASSERT_TRUE(Submit(stub, b.items(1).lease(), {"dog"}, &r2).ok());
  EXPECT_EQ(r2.item_status(), "labeled");
  EXPECT_TRUE(r2.consensus_tie());
  // bob gives up the third item; cy may now take it (one judgement is still missing).
  v1::ReleaseLeaseRequest rel;
  rel.set_item_id(b.items(2).lease().item_id());
  rel.set_lease_token(b.items(2).lease().token());
  {
    grpc::ClientContext ctx;
    v1::ReleaseLeaseResponse rr;
    ASSERT_TRUE(stub.ReleaseLease(&ctx, rel, &rr).ok());
  }
  ASSERT_TRUE(Claim(stub, project.id(), "cy", 3, &c).ok());
  ASSERT_EQ(c.items_size(), 1);
  EXPECT_EQ(c.items(0).lease().item_id(), ids[2]);
  v1::SubmitLabelResponse r3;
  ASSERT_TRUE(Submit(stub, c.items(0).lease(), {"dog"}, &r3).ok());
  EXPECT_TRUE(r3.consensus_tie());

  // Relabel keeps the history: bob changes the tie on item 2 to cat.
  v1::RelabelRequest rl;
  rl.set_item_id(ids[1]);
  rl.set_annotator("bob");
  rl.add_classes("cat");
  v1::SubmitLabelResponse rlr;
  {
    grpc::ClientContext ctx;
    auto st = stub.Relabel(&ctx, rl, &rlr);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_TRUE(rlr.relabeled());
  EXPECT_FALSE(rlr.consensus_tie());
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.label_history WHERE annotator = 'bob' AND "
                    "old_classes = ARRAY['dog'] AND new_classes = ARRAY['cat'] AND item_id = " +
                    std::to_string(ids[1])),
            1);
  // Relabel by someone who never labeled the item is refused.
  rl.set_annotator("zed");
  {
    grpc::ClientContext ctx;
    auto st = stub.Relabel(&ctx, rl, &rlr);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(st.error_message(), "annotator: 'zed' has not labeled item " +
                                      std::to_string(ids[1]) +
                                      " yet; claim it and submit a label first");
  }

  v1::GetStatsRequest sreq;
  sreq.set_project_id(project.id());
  v1::ProjectStats stats;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub.GetStats(&ctx, sreq, &stats).ok());
  EXPECT_EQ(stats.labeled(), 3);
  EXPECT_EQ(stats.ties(), 1);  // item 3: ann cat, cy dog
  // ann/bob agree on both items they share (cat, cat): kappa 1 (one category only).
  ASSERT_GE(stats.pair_agreement_size(), 2);
  EXPECT_EQ(stats.pair_agreement(0).annotator_a(), "ann");
  EXPECT_EQ(stats.pair_agreement(0).annotator_b(), "bob");
  EXPECT_EQ(stats.pair_agreement(0).items(), 2);
  EXPECT_DOUBLE_EQ(stats.pair_agreement(0).cohen_kappa(), 1.0);
  EXPECT_FALSE(stats.has_fleiss_kappa());  // k = 2
}

// A fake ranking service whose answer the test controls.
class FakeRanking final : public v1::RankingService::Service {
 public:
  grpc::Status NextCandidates(grpc::ServerContext*, const v1::NextCandidatesRequest*,
                              v1::NextCandidatesResponse* resp) override {
    std::lock_guard lock(mu);
    if (fail) return {grpc::StatusCode::INTERNAL, "boom"};
    resp->set_has_order(!order.empty());
    for (auto id : order) resp->add_candidates()->set_item_id(id);
    ++calls;
    return grpc::Status::OK;
  }
  std::mutex mu;
  std::vector<int64_t> order;
  bool fail = false;
  int calls = 0;
};

TEST(LabelingAssignment, RankingOrderFirstThenOldestFirstWhenRankingFails) {
  FakeRanking fake;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&fake);
  auto server = builder.BuildAndStart();
  ASSERT_GT(port, 0);
  LabelingHarness h;
  START_OR_SKIP(h,
                {"--ranking-addr", "127.0.0.1:" + std::to_string(port), "--ranking-retry-ms", "0"});
  auto project = h.CreateProject({"a", "b"});
  auto ids = h.InsertItems(project.id(), 6);
  {
    std::lock_guard lock(fake.mu);
    fake.order = {ids[4], ids[2], ids[4], 999999};  // duplicates and unknown ids are ignored
  }
  v1::ClaimNextResponse r;
  ASSERT_TRUE(Claim(h.stub(), project.id(), "ann", 3, &r).ok());
  ASSERT_EQ(r.items_size(), 3);
  EXPECT_EQ(r.order(), "ranking");
  EXPECT_EQ(r.items(0).lease().item_id(), ids[4]);
  EXPECT_EQ(r.items(1).lease().item_id(), ids[2]);
  EXPECT_EQ(r.items(2).lease().item_id(), ids[0]);  // filled oldest-first
  {
    std::lock_guard lock(fake.mu);
    fake.fail = true;
  }
  ASSERT_TRUE(Claim(h.stub(), project.id(), "bob", 2, &r).ok());
  EXPECT_EQ(r.order(), "oldest_first");
  ASSERT_EQ(r.items_size(), 2);
  EXPECT_EQ(r.items(0).lease().item_id(), ids[1]);
  EXPECT_EQ(r.items(1).lease().item_id(), ids[3]);
  server->Shutdown();
  // Ranking gone entirely: claims still work.
  ASSERT_TRUE(Claim(h.stub(), project.id(), "cy", 1, &r).ok());
  ASSERT_EQ(r.items_size(), 1);
  EXPECT_EQ(r.items(0).lease().item_id(), ids[5]);
}

}  // namespace
}  // namespace labelloop::e2e
