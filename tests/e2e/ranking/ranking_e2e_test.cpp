// labelloop-ranking end to end: predictions written to training's tables, a models.ready
// message, and the order NextCandidates hands out; labels dropping items; restarts
// rebuilding from PostgreSQL; bad predictions; strategies; replicas agreeing.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "common/redis/redis.hpp"
#include "labelloop/v1/ranking.grpc.pb.h"
#include "tests/e2e/ranking/fixture.hpp"

namespace labelloop::ranking_e2e {
namespace {

using std::chrono::seconds;

// Eight items of a 3-class project, hand-ordered:
//   least confidence (1 - max p): 0 (.66) 5 (.6) 2 (.5) 6 (.5, tie: larger id) 3 (.4) 4 (.2)
//                                 1 (.1) 7 (.02)
//   margin (1 - (p1 - p2)):       5 (1.0) 0 (.99) 2 (.8) 6 (.8) 3 (.6) 4 (.3) 1 (.15) 7 (.03)
const std::vector<std::vector<float>> kProbs = {
    {0.34f, 0.33f, 0.33f}, {0.9f, 0.05f, 0.05f}, {0.5f, 0.3f, 0.2f}, {0.6f, 0.2f, 0.2f},
    {0.8f, 0.1f, 0.1f},    {0.4f, 0.4f, 0.2f},   {0.2f, 0.3f, 0.5f}, {0.98f, 0.01f, 0.01f}};
const std::vector<int> kLeastConfidence = {0, 5, 2, 6, 3, 4, 1, 7};
const std::vector<int> kMargin = {5, 0, 2, 6, 3, 4, 1, 7};

class RankingE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::AdminPgUrl();
    auto redis = testing::TestRedis();
    if (!url || !redis) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)";
    world_ = std::make_unique<World>(*url);
    redis_ = *redis;
    publisher_ = std::make_unique<redis::Client>(
        redis::Endpoint{.host = redis_.first, .port = redis_.second});
  }

  std::unique_ptr<testing::ServiceUnderTest> Start(std::vector<std::string> args = {}) {
    if (args.empty()) args = {"--reconcile-interval-ms", "600000"};
    auto s = std::make_unique<testing::ServiceUnderTest>("labelloop-ranking", world_->url(), redis_,
                                                         args);
    EXPECT_TRUE(s->WaitServing(seconds(30))) << s->Log();
    return s;
  }

  // A single-label project with the eight items above and (optionally) a ready model.
  void MakeProject(const std::string& settings = "{}") {
    project_ = world_->CreateProject("single", {"a", "b", "c"}, settings);
    std::vector<std::vector<float>> features;
    for (size_t i = 0; i < kProbs.size(); ++i) features.push_back({static_cast<float>(i), 1.0f});
    items_ = world_->AddItems(project_, features);
  }

  int64_t AddModel(int version, bool publish) {
    const int64_t model = world_->AddModel(project_, version, false, {"a", "b", "c"});
    world_->AddPredictions(model, items_, kProbs, rows_per_chunk_);
    if (publish) PublishModelReady(model, version);
    return model;
  }

  void PublishModelReady(int64_t model, int version) {
    publisher_->Publish("labelloop.models.ready",
                        "{\"type\":\"models.ready\",\"version\":1,\"project_id\":" +
                            std::to_string(project_) + ",\"model_id\":" + std::to_string(model) +
                            ",\"model_version\":" + std::to_string(version) + "}");
  }

  void PublishLabeled(int64_t item) {
    publisher_->Publish("labelloop.labels.submitted",
                        "{\"type\":\"labels.submitted\",\"version\":1,\"project_id\":" +
                            std::to_string(project_) + ",\"item_id\":" + std::to_string(item) +
                            ",\"annotator\":\"ann\",\"classes\":[\"a\"],\"item_labeled\":true,"
                            "\"labeled_count\":1}");
  }

  static v1::RankInfoResponse Info(v1::RankingService::Stub& stub, int64_t project) {
    grpc::ClientContext ctx;
    v1::RankInfoRequest req;
    req.set_project_id(project);
    v1::RankInfoResponse resp;
    EXPECT_TRUE(stub.RankInfo(&ctx, req, &resp).ok());
    return resp;
  }

  static bool WaitModel(v1::RankingService::Stub& stub, int64_t project, int64_t model) {
    return testing::WaitFor(
        [&] {
          auto info = Info(stub, project);
          return info.has_order() && info.model_id() == model;
        },
        seconds(15));
  }

  v1::NextCandidatesResponse Next(v1::RankingService::Stub& stub, int n,
                                  const std::string& strategy = "",
                                  const std::vector<int64_t>& exclude = {},
                                  grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    v1::NextCandidatesRequest req;
    req.set_project_id(project_);
    req.set_n(n);
    req.set_strategy(strategy);
    for (auto e : exclude) req.add_exclude_item_ids(e);
    v1::NextCandidatesResponse resp;
    auto s = stub.NextCandidates(&ctx, req, &resp);
    if (status) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return resp;
  }

  std::vector<int64_t> NextIds(v1::RankingService::Stub& stub, int n,
                               const std::string& strategy = "",
                               const std::vector<int64_t>& exclude = {}) {
    std::vector<int64_t> out;
    const auto resp = Next(stub, n, strategy, exclude);
    for (const auto& c : resp.candidates()) out.push_back(c.item_id());
    return out;
  }

  std::vector<int64_t> Expected(const std::vector<int>& order) const {
    std::vector<int64_t> out;
    for (int i : order) out.push_back(items_[i]);
    return out;
  }

  std::unique_ptr<World> world_;
  std::pair<std::string, int> redis_;
  std::unique_ptr<redis::Client> publisher_;
  int64_t project_ = 0;
  size_t rows_per_chunk_ = prediction_chunks::kMaxRowsPerChunk;
  std::vector<int64_t> items_;
};

TEST_F(RankingE2E, ModelsReadyPutsTheMostUncertainItemsFirst) {
  MakeProject();
  auto ranking = Start();  // reconciles only every 10 minutes: the message must do it
  auto stub = v1::RankingService::NewStub(ranking->Channel());
  EXPECT_FALSE(Info(*stub, project_).has_order());
  EXPECT_FALSE(Next(*stub, 3).has_order());

  const int64_t model = AddModel(1, /*publish=*/true);
  ASSERT_TRUE(WaitModel(*stub, project_, model)) << ranking->Log();

  auto info = Info(*stub, project_);
  EXPECT_EQ(info.strategy(), "entropy");  // the default
  EXPECT_EQ(info.items(), 8);
  EXPECT_EQ(info.live_items(), 8);
  EXPECT_EQ(info.rejected_items(), 0);
  EXPECT_GT(info.built_at().seconds(), 0);

  EXPECT_EQ(NextIds(*stub, 8, "least_confidence"), Expected(kLeastConfidence));
  EXPECT_EQ(NextIds(*stub, 8, "margin"), Expected(kMargin));
  auto lc = Next(*stub, 3, "least_confidence");
  ASSERT_EQ(lc.candidates_size(), 3);
  EXPECT_NEAR(lc.candidates(0).score(), 0.66, 1e-6);
  EXPECT_EQ(lc.candidates(2).rank(), 2);
  EXPECT_EQ(lc.model_id(), model);
  EXPECT_EQ(lc.strategy(), "least_confidence");
  // entropy (the project's strategy): 0 (1.0986) then 5 (1.0549), then 2 and 6 (1.0297).
  auto ent = NextIds(*stub, 4);
  ASSERT_EQ(ent.size(), 4u);
  EXPECT_EQ(ent[0], items_[0]);
  EXPECT_EQ(ent[1], items_[5]);
  EXPECT_EQ(std::set<int64_t>(ent.begin() + 2, ent.end()),
            (std::set<int64_t>{items_[2], items_[6]}));
  // Excluded items (held by other annotators) are skipped.
  EXPECT_EQ(NextIds(*stub, 2, "least_confidence", {items_[0], items_[2]}),
            (std::vector<int64_t>{items_[5], items_[6]}));
  // Random is seeded: the same order every call.
  EXPECT_EQ(NextIds(*stub, 8, "random"), NextIds(*stub, 8, "random"));

  {
    grpc::ClientContext ctx;
    v1::GetScoresRequest req;
    req.set_project_id(project_);
    req.set_strategy("margin");
    req.add_item_ids(items_[3]);
    req.add_item_ids(999999);
    v1::GetScoresResponse resp;
    ASSERT_TRUE(stub->GetScores(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.scores_size(), 2);
    EXPECT_TRUE(resp.scores(0).found());
    EXPECT_NEAR(resp.scores(0).score(), 0.6, 1e-6);
    EXPECT_EQ(resp.scores(0).rank(), 4);
    EXPECT_FALSE(resp.scores(1).found());
  }
  {
    grpc::ClientContext ctx;
    v1::DistributionRequest req;
    req.set_project_id(project_);
    req.set_strategy("least_confidence");
    req.set_bins(4);
    v1::DistributionResponse resp;
    ASSERT_TRUE(stub->Distribution(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.bins_size(), 4);
    EXPECT_EQ(resp.items(), 8);
    int64_t total = 0;
    for (const auto& b : resp.bins()) total += b.count();
    EXPECT_EQ(total, 8);
    EXPECT_NEAR(resp.bins(0).lower(), 0.02, 1e-6);
    EXPECT_NEAR(resp.bins(3).upper(), 0.66, 1e-6);
  }
  // Bad requests name what to fix.
  grpc::Status status;
  Next(*stub, 0, "", {}, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  Next(*stub, 3, "most_confused", {}, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("most_confused"), std::string::npos);
}

TEST_F(RankingE2E, ALabeledItemNeverComesBack) {
  MakeProject();
  // Predictions in chunks of 3 rows loaded over three COPYs of one chunk each (the path
  // 1M-item projects take).
  rows_per_chunk_ = 3;
  auto ranking = Start({"--reconcile-interval-ms", "300", "--load-connections", "3",
                        "--load-rows-per-connection", "3"});
  auto stub = v1::RankingService::NewStub(ranking->Channel());
  const int64_t m1 = AddModel(1, true);
  ASSERT_TRUE(WaitModel(*stub, project_, m1)) << ranking->Log();
  ASSERT_EQ(NextIds(*stub, 1, "least_confidence"), (std::vector<int64_t>{items_[0]}));

  // Labeled and announced: gone at once.
  world_->MarkLabeled(items_[0]);
  PublishLabeled(items_[0]);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return NextIds(*stub, 1, "least_confidence")[0] == items_[5]; }, seconds(10)));
  EXPECT_EQ(Info(*stub, project_).live_items(), 7);

  // Labeled but the message was lost: the reconcile finds it at the head of the order.
  world_->MarkLabeled(items_[5]);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return NextIds(*stub, 1, "least_confidence")[0] == items_[2]; }, seconds(10)))
      << ranking->Log();

  // A new model still has predictions for them; they stay out.
  const int64_t m2 = AddModel(2, true);
  ASSERT_TRUE(WaitModel(*stub, project_, m2)) << ranking->Log();
  for (const auto& strategy : {"least_confidence", "margin", "entropy", "random"}) {
    auto ids = NextIds(*stub, 8, strategy);
    EXPECT_EQ(ids.size(), 6u) << strategy;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), items_[0]), 0) << strategy;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), items_[5]), 0) << strategy;
  }
}

TEST_F(RankingE2E, RestartRebuildsTheOrderFromPostgres) {
  MakeProject();
  auto ranking = Start();
  auto stub = v1::RankingService::NewStub(ranking->Channel());
  const int64_t model = AddModel(1, true);
  ASSERT_TRUE(WaitModel(*stub, project_, model)) << ranking->Log();
  const auto before = NextIds(*stub, 8, "margin");
  ASSERT_EQ(before, Expected(kMargin));
  // Wait until the scores are persisted, then kill it without warning.
  ASSERT_TRUE(testing::WaitFor(
      [&] { return ranking->Log().find("scores persisted") != std::string::npos; }, seconds(10)));
  ranking->process().Signal(SIGKILL);
  ranking->process().Wait(seconds(5));

  // While it is down, an item is labeled and the message is lost.
  world_->MarkLabeled(items_[5]);
  ranking->Restart();
  ASSERT_TRUE(ranking->WaitServing(seconds(30))) << ranking->Log();
  auto stub2 = v1::RankingService::NewStub(ranking->Channel());
  ASSERT_TRUE(WaitModel(*stub2, project_, model)) << ranking->Log();
  auto after = before;
  after.erase(std::find(after.begin(), after.end(), items_[5]));
  EXPECT_EQ(NextIds(*stub2, 8, "margin"), after);
  EXPECT_NE(ranking->Log().find("persisted scores"), std::string::npos) << ranking->Log();
}

TEST_F(RankingE2E, ACorruptChunkFailsTheBuildAndTheOldOrderStays) {
  MakeProject();
  rows_per_chunk_ = 3;
  auto ranking = Start({"--reconcile-interval-ms", "300"});
  auto stub = v1::RankingService::NewStub(ranking->Channel());
  const int64_t m1 = AddModel(1, true);
  ASSERT_TRUE(WaitModel(*stub, project_, m1)) << ranking->Log();

  // Model 2's second chunk lost bytes of its probabilities (3 rows × 3 classes × 4 = 36).
  const int64_t m2 = world_->AddModel(project_, 2, false, {"a", "b", "c"}, /*ready=*/false);
  world_->AddPredictions(m2, items_, kProbs, rows_per_chunk_);
  const std::string chunk1 = " WHERE model_id = " + std::to_string(m2) + " AND chunk = 1";
  world_->Exec("CREATE TABLE kept AS SELECT probabilities FROM training.prediction_chunks" +
               chunk1);
  world_->Exec(
      "UPDATE training.prediction_chunks SET probabilities = substring(probabilities from 1 for "
      "30)" +
      chunk1);
  world_->SetReady(m2);
  PublishModelReady(m2, 2);
  const std::string want = "stored predictions are corrupt: model " + std::to_string(m2) +
                           ", prediction chunk 1: probabilities has 30 bytes, row_count 3 × 3 "
                           "classes needs 36";
  ASSERT_TRUE(
      testing::WaitFor([&] { return ranking->Log().find(want) != std::string::npos; }, seconds(10)))
      << ranking->Log();
  // Still serving, from model 1.
  EXPECT_EQ(Info(*stub, project_).model_id(), m1);
  EXPECT_EQ(NextIds(*stub, 8, "margin"), Expected(kMargin));

  // Repaired (in one statement): the next reconcile builds model 2.
  world_->Exec(
      "UPDATE training.prediction_chunks SET probabilities = (SELECT probabilities FROM kept)" +
      chunk1);
  ASSERT_TRUE(WaitModel(*stub, project_, m2)) << ranking->Log();
  EXPECT_EQ(NextIds(*stub, 8, "margin"), Expected(kMargin));
}

TEST_F(RankingE2E, BadPredictionsAreSkippedAndCountedAndRejectedByTheRpc) {
  MakeProject();
  auto ranking = Start();
  auto stub = v1::RankingService::NewStub(ranking->Channel());
  const int64_t model = world_->AddModel(project_, 1, false, {"a", "b", "c"});
  auto probs = kProbs;
  probs[0] = {std::numeric_limits<float>::quiet_NaN(), 0.5f, 0.5f};
  probs[5] = {0.5f, 0.1f, 0.1f};   // sums to 0.7
  probs[2] = {1.5f, -0.5f, 0.0f};  // out of range
  probs[3] = {0.2f, 0.2f, std::numeric_limits<float>::infinity()};
  world_->AddPredictions(model, items_, probs);
  PublishModelReady(model, 1);
  ASSERT_TRUE(WaitModel(*stub, project_, model)) << ranking->Log();
  EXPECT_EQ(Info(*stub, project_).rejected_items(), 4);
  EXPECT_EQ(NextIds(*stub, 8, "least_confidence"),
            (std::vector<int64_t>{items_[6], items_[4], items_[1], items_[7]}));
  EXPECT_NE(ranking->Log().find("skipped 4 prediction rows"), std::string::npos);

  grpc::ClientContext ctx;
  v1::ScoreProbabilitiesRequest req;
  req.set_strategy("entropy");
  for (auto row : {std::vector<float>{0.5f, 0.5f},
                   std::vector<float>{0.5f, std::numeric_limits<float>::quiet_NaN()}}) {
    *req.add_rows()->mutable_probabilities() = {row.begin(), row.end()};
  }
  v1::ScoreProbabilitiesResponse resp;
  auto s = stub->ScoreProbabilities(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("rows[1]: NaN in class 1"), std::string::npos)
      << s.error_message();

  grpc::ClientContext ctx2;
  req.mutable_rows()->RemoveLast();
  ASSERT_TRUE(stub->ScoreProbabilities(&ctx2, req, &resp).ok());
  ASSERT_EQ(resp.scores_size(), 1);
  EXPECT_NEAR(resp.scores(0), std::log(2.0), 1e-5);
}

TEST_F(RankingE2E, StrategyComesFromTheProjectAndSetStrategy) {
  MakeProject("{\"strategy\": \"margin\"}");
  const int64_t model = AddModel(1, false);  // ready before start: found at start-up
  auto ranking = Start();
  auto stub = v1::RankingService::NewStub(ranking->Channel());
  ASSERT_TRUE(WaitModel(*stub, project_, model)) << ranking->Log();
  EXPECT_EQ(Info(*stub, project_).strategy(), "margin");
  EXPECT_EQ(NextIds(*stub, 8), Expected(kMargin));

  auto set = [&](const std::string& strategy, const std::string& aggregate, int64_t project) {
    grpc::ClientContext ctx;
    v1::SetStrategyRequest req;
    req.set_project_id(project);
    req.set_strategy(strategy);
    req.set_multilabel_aggregate(aggregate);
    v1::SetStrategyResponse resp;
    return stub->SetStrategy(&ctx, req, &resp);
  };
  ASSERT_TRUE(set("least_confidence", "", project_).ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Info(*stub, project_).strategy() == "least_confidence"; }, seconds(10)));
  EXPECT_EQ(NextIds(*stub, 8), Expected(kLeastConfidence));
  EXPECT_EQ(Info(*stub, project_).model_id(), model);

  EXPECT_EQ(set("smallest", "", project_).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(set("margin", "median", project_).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(set("margin", "", 999999).error_code(), grpc::StatusCode::NOT_FOUND);

  // A second replica reads the stored strategy and builds the very same order.
  auto replica = Start();
  auto stub2 = v1::RankingService::NewStub(replica->Channel());
  ASSERT_TRUE(WaitModel(*stub2, project_, model)) << replica->Log();
  EXPECT_EQ(Info(*stub2, project_).strategy(), "least_confidence");
  for (const auto& strategy : {"", "margin", "entropy", "random", "batch_diverse"}) {
    EXPECT_EQ(NextIds(*stub, 8, strategy), NextIds(*stub2, 8, strategy)) << strategy;
  }
  // The first replica's order changes with the second's SetStrategy (through the bus).
  {
    grpc::ClientContext ctx;
    v1::SetStrategyRequest req;
    req.set_project_id(project_);
    req.set_strategy("random");
    v1::SetStrategyResponse resp;
    ASSERT_TRUE(stub2->SetStrategy(&ctx, req, &resp).ok());
  }
  EXPECT_TRUE(
      testing::WaitFor([&] { return Info(*stub, project_).strategy() == "random"; }, seconds(10)));
}

TEST_F(RankingE2E, MultiLabelUsesPerClassUncertaintyByMeanOrMax) {
  project_ = world_->CreateProject("multi", {"x", "y"}, "{\"strategy\": \"least_confidence\"}");
  items_ = world_->AddItems(project_, {{0.0f}, {1.0f}});
  const int64_t model = world_->AddModel(project_, 1, true, {"x", "y"});
  // Item 0: min(p, 1-p) = 0.45, 0.0 -> mean 0.225, max 0.45
  // Item 1: min(p, 1-p) = 0.3, 0.3  -> mean 0.3,   max 0.3
  world_->AddPredictions(model, items_, {{0.55f, 1.0f}, {0.3f, 0.7f}});
  auto ranking = Start();
  auto stub = v1::RankingService::NewStub(ranking->Channel());
  ASSERT_TRUE(WaitModel(*stub, project_, model)) << ranking->Log();
  EXPECT_TRUE(Info(*stub, project_).multi_label());
  auto mean = Next(*stub, 2);
  ASSERT_EQ(mean.candidates_size(), 2);
  EXPECT_EQ(mean.candidates(0).item_id(), items_[1]);
  EXPECT_NEAR(mean.candidates(0).score(), 0.3, 1e-6);
  EXPECT_NEAR(mean.candidates(1).score(), 0.225, 1e-6);

  grpc::ClientContext ctx;
  v1::SetStrategyRequest req;
  req.set_project_id(project_);
  req.set_strategy("least_confidence");
  req.set_multilabel_aggregate("max");
  v1::SetStrategyResponse resp;
  ASSERT_TRUE(stub->SetStrategy(&ctx, req, &resp).ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Info(*stub, project_).multilabel_aggregate() == "max"; }, seconds(10)));
  auto max = Next(*stub, 2);
  ASSERT_EQ(max.candidates_size(), 2);
  EXPECT_EQ(max.candidates(0).item_id(), items_[0]);
  EXPECT_NEAR(max.candidates(0).score(), 0.45, 1e-6);
}

TEST_F(RankingE2E, BatchDiverseSpreadsABatchOverClusters) {
  // 4 clusters of 5 items; the most uncertain are all in cluster 0.
  project_ = world_->CreateProject("single", {"a", "b"}, "{\"strategy\": \"batch_diverse\"}");
  std::vector<std::vector<float>> features, probs;
  for (int c = 0; c < 4; ++c) {
    for (int i = 0; i < 5; ++i) {
      features.push_back({100.0f * c + 0.1f * i, 0.0f});
      const float p = 0.5f + 0.1f * c + 0.01f * i;
      probs.push_back({p, 1.0f - p});
    }
  }
  items_ = world_->AddItems(project_, features);
  const int64_t model = world_->AddModel(project_, 1, false, {"a", "b"});
  world_->AddPredictions(model, items_, probs);
  auto ranking = Start();
  auto stub = v1::RankingService::NewStub(ranking->Channel());
  ASSERT_TRUE(WaitModel(*stub, project_, model)) << ranking->Log();
  const auto plain = NextIds(*stub, 4, "entropy");
  EXPECT_EQ(plain, (std::vector<int64_t>{items_[0], items_[1], items_[2], items_[3]}));
  const auto diverse = NextIds(*stub, 4);  // the project's strategy: batch_diverse
  ASSERT_EQ(diverse.size(), 4u);
  EXPECT_EQ(diverse[0], items_[0]);
  std::set<int64_t> clusters;
  for (auto id : diverse) {
    clusters.insert((std::find(items_.begin(), items_.end(), id) - items_.begin()) / 5);
  }
  EXPECT_EQ(clusters.size(), 4u);
}

}  // namespace
}  // namespace labelloop::ranking_e2e
