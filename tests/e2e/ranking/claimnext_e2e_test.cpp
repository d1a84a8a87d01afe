// Ranking and labeling together: a model becomes ready, and labeling's ClaimNext hands
// out the most uncertain items in ranking's order; a labeled item never comes back.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/redis/redis.hpp"
#include "labelloop/v1/labeling.grpc.pb.h"
#include "labelloop/v1/ranking.grpc.pb.h"
#include "tests/e2e/ranking/fixture.hpp"

namespace labelloop::ranking_e2e {
namespace {

using std::chrono::seconds;

// least confidence: 0 (.66) 5 (.6) 2 (.5) 6 (.5) 3 (.4) 4 (.2) 1 (.1) 7 (.02)
const std::vector<std::vector<float>> kProbs = {
    {0.34f, 0.33f, 0.33f}, {0.9f, 0.05f, 0.05f}, {0.5f, 0.3f, 0.2f}, {0.6f, 0.2f, 0.2f},
    {0.8f, 0.1f, 0.1f},    {0.4f, 0.4f, 0.2f},   {0.2f, 0.3f, 0.5f}, {0.98f, 0.01f, 0.01f}};

TEST(RankingClaimNextE2E, ClaimNextHandsOutTheMostUncertainItemsInOrder) {
  auto admin = testing::AdminPgUrl();
  auto redis = testing::TestRedis();
  if (!admin || !redis) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)";
  World world(*admin);
  const int64_t project =
      world.CreateProject("single", {"a", "b", "c"}, "{\"strategy\": \"least_confidence\"}");
  std::vector<std::vector<float>> features(kProbs.size(), std::vector<float>{0.0f});
  const auto items = world.AddItems(project, features);

  testing::ServiceUnderTest ranking("labelloop-ranking", world.url(), *redis,
                                    {"--reconcile-interval-ms", "600000"});
  ASSERT_TRUE(ranking.WaitServing(seconds(30))) << ranking.Log();
  testing::ServiceUnderTest labeling("labelloop-labeling", world.url(), *redis,
                                     {"--ranking-addr", ranking.address()});
  ASSERT_TRUE(labeling.WaitServing(seconds(30))) << labeling.Log();
  auto rank = v1::RankingService::NewStub(ranking.Channel());
  auto label = v1::LabelingService::NewStub(labeling.Channel());

  auto claim = [&](const std::string& annotator, int n) {
    grpc::ClientContext ctx;
    v1::ClaimNextRequest req;
    req.set_project_id(project);
    req.set_annotator(annotator);
    req.set_n(n);
    v1::ClaimNextResponse resp;
    auto status = label->ClaimNext(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << labeling.Log();
    return resp;
  };
  auto ids = [](const v1::ClaimNextResponse& resp) {
    std::vector<int64_t> out;
    for (const auto& i : resp.items()) out.push_back(i.lease().item_id());
    return out;
  };

  // The model becomes ready.
  const int64_t model = world.AddModel(project, 1, false, {"a", "b", "c"});
  world.AddPredictions(model, items, kProbs);
  redis::Client publisher({.host = redis->first, .port = redis->second});
  publisher.Publish(
      "labelloop.models.ready",
      "{\"type\":\"models.ready\",\"version\":1,\"project_id\":" + std::to_string(project) +
          ",\"model_id\":" + std::to_string(model) + ",\"model_version\":1}");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        v1::RankInfoRequest req;
        req.set_project_id(project);
        v1::RankInfoResponse resp;
        return rank->RankInfo(&ctx, req, &resp).ok() && resp.model_id() == model;
      },
      seconds(15)))
      << ranking.Log();

  // Within the ranking client's retry window labeling may still hand out oldest-first;
  // the first ranked answer is what matters.
  v1::ClaimNextResponse first;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        first = claim("ann1", 3);
        if (first.order() == "ranking") return true;
        for (const auto& i : first.items()) {  // give back what oldest-first handed out
          grpc::ClientContext ctx;
          v1::ReleaseLeaseRequest req;
          req.set_item_id(i.lease().item_id());
          req.set_lease_token(i.lease().token());
          v1::ReleaseLeaseResponse resp;
          label->ReleaseLease(&ctx, req, &resp);
        }
        return false;
      },
      seconds(15)))
      << labeling.Log();
  EXPECT_EQ(ids(first), (std::vector<int64_t>{items[0], items[5], items[2]}));

  // Another annotator gets the next ones (the leased items are skipped).
  auto second = claim("ann2", 2);
  EXPECT_EQ(second.order(), "ranking");
  EXPECT_EQ(ids(second), (std::vector<int64_t>{items[6], items[3]}));

  // ann1 labels the most uncertain item: it leaves ranking's order and never comes back.
  {
    grpc::ClientContext ctx;
    v1::SubmitLabelRequest req;
    req.set_item_id(items[0]);
    req.set_lease_token(first.items(0).lease().token());
    req.add_classes("a");
    v1::SubmitLabelResponse resp;
    auto status = label->SubmitLabel(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.item_status(), "labeled");
  }
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        v1::NextCandidatesRequest req;
        req.set_project_id(project);
        req.set_n(1);
        v1::NextCandidatesResponse resp;
        return rank->NextCandidates(&ctx, req, &resp).ok() && resp.candidates_size() == 1 &&
               resp.candidates(0).item_id() != items[0];
      },
      seconds(10)))
      << ranking.Log();
  auto rest = claim("ann3", 8);
  EXPECT_EQ(rest.order(), "ranking");
  // Everything not leased or labeled, in ranking's order: 4, 1, 7.
  EXPECT_EQ(ids(rest), (std::vector<int64_t>{items[4], items[1], items[7]}));
  auto all = ids(rest);
  EXPECT_EQ(std::count(all.begin(), all.end(), items[0]), 0);
}

}  // namespace
}  // namespace labelloop::ranking_e2e
