// labelloop-training end to end: real binaries (one or two replicas) on a test database
// holding labeling's schema with fixture projects and items, driven over gRPC; Redis
// carries the wake-ups, cancel messages, progress and models.ready.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/redis/redis.hpp"
#include "common/testing/testing.hpp"
#include "labelloop/v1/training.grpc.pb.h"
#include "tests/e2e/training/world.hpp"

namespace labelloop::training_e2e {
namespace {

using std::chrono::seconds;

const std::vector<std::string> kClasses = {"cat", "dog", "eel"};

class TrainingE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::AdminPgUrl();
    auto redis = testing::TestRedis();
    if (!url || !redis) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)";
    world_ = std::make_unique<World>(*url);
    redis_ = *redis;
  }

  std::unique_ptr<testing::ServiceUnderTest> Start(const std::string& worker_id,
                                                   std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--worker-id",     worker_id, "--job-lease-seconds",    "2", "--job-poll-ms", "200",
        "--watch-poll-ms", "50",      "--min-labels-per-class", "3"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto s = std::make_unique<testing::ServiceUnderTest>("labelloop-training", world_->url(),
                                                         redis_, args);
    EXPECT_TRUE(s->WaitServing(seconds(30))) << s->Log();
    return s;
  }

  std::string State(int64_t job) {
    return world_->Query("SELECT state FROM training.jobs WHERE id = " + std::to_string(job))[0][0]
        .as<std::string>();
  }
  int Epoch(int64_t job) {
    return world_->Query("SELECT epoch FROM training.jobs WHERE id = " + std::to_string(job))[0][0]
        .as<int>();
  }
  bool WaitState(int64_t job, const std::string& state, seconds timeout = seconds(60)) {
    return testing::WaitFor([&] { return State(job) == state; }, timeout);
  }

  // A project big enough that an MLP run takes a few seconds (so a kill or cancel lands
  // mid-job), with the kill checked against the job's epoch, never a clock.
  int64_t BigProject() {
    const int64_t p = world_->CreateProject("single", kClasses);
    world_->AddItems(p, Blobs(8000, 7000, 32, kClasses, 21, 1.0));
    return p;
  }
  v1::ModelSpec SlowSpec() {
    v1::ModelSpec spec;
    spec.set_model_type(v1::MODEL_TYPE_MLP);
    spec.add_hidden_units(128);
    spec.add_hidden_units(128);
    spec.set_epochs(40);
    spec.set_batch_size(32);
    spec.set_early_stopping_patience(0);
    return spec;
  }

  std::unique_ptr<World> world_;
  std::pair<std::string, int> redis_;
};

grpc::Status StartJob(v1::TrainingService::Stub& stub, int64_t project, const v1::ModelSpec& spec,
                      int64_t* job_id) {
  grpc::ClientContext ctx;
  v1::StartTrainingRequest req;
  req.set_project_id(project);
  *req.mutable_spec() = spec;
  v1::StartTrainingResponse resp;
  auto st = stub.StartTraining(&ctx, req, &resp);
  *job_id = resp.job_id();
  return st;
}

TEST_F(TrainingE2E, TrainsPredictsWatchesAndAnnounces) {
  const int64_t project = world_->CreateProject("single", kClasses);
  const auto ids = world_->AddItems(project, Blobs(500, 300, 8, kClasses, 1));
  // models.ready is announced on the bus.
  std::mutex mu;
  std::vector<std::string> ready;
  redis::Subscriber sub({.host = redis_.first, .port = redis_.second}, {"labelloop.models.ready"},
                        [&](const std::string&, const std::string& payload) {
                          std::lock_guard lock(mu);
                          ready.push_back(payload);
                        });
  sub.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return sub.connected(); }, seconds(10)));

  auto svc = Start("w1", {"--worker-enabled", "false"});  // queue first, then watch
  auto stub = v1::TrainingService::NewStub(svc->Channel());
  v1::ModelSpec spec;
  spec.set_epochs(15);
  int64_t job = 0;
  ASSERT_TRUE(StartJob(*stub, project, spec, &job).ok());
  EXPECT_EQ(State(job), "PENDING");

  // Two watchers at once see the same epochs and the end.
  auto watch = [&](std::vector<v1::TrainingProgress>* out) {
    grpc::ClientContext ctx;
    v1::WatchTrainingRequest req;
    req.set_job_id(job);
    auto reader = stub->WatchTraining(&ctx, req);
    v1::TrainingProgress p;
    while (reader->Read(&p)) out->push_back(p);
    EXPECT_TRUE(reader->Finish().ok());
  };
  std::vector<v1::TrainingProgress> seen1, seen2;
  std::thread w1(watch, &seen1), w2(watch, &seen2);
  auto worker = Start("w2");  // the replica that does the work
  w1.join();
  w2.join();
  for (const auto* seen : {&seen1, &seen2}) {
    ASSERT_GE(seen->size(), 3u);
    EXPECT_EQ(seen->front().state(), v1::TRAINING_JOB_STATE_PENDING);
    EXPECT_EQ(seen->back().state(), v1::TRAINING_JOB_STATE_SUCCEEDED);
    int epochs = 0;
    for (const auto& p : *seen) epochs += p.has_epoch_metrics();
    EXPECT_GE(epochs, 1);
  }
  ASSERT_EQ(State(job), "SUCCEEDED");

  // The model: metrics, per-epoch history, the portable form.
  grpc::ClientContext lctx;
  v1::ListModelsRequest lreq;
  lreq.set_project_id(project);
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub->ListModels(&lctx, lreq, &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  const auto& info = models.models(0);
  EXPECT_EQ(info.version(), 1);
  EXPECT_TRUE(info.predictions_ready());
  EXPECT_EQ(info.labeled_items(), 300);
  EXPECT_GE(info.metrics().accuracy(), 0.95);
  EXPECT_EQ(info.metrics().per_class_size(), 3);
  EXPECT_EQ(info.metrics().confusion_size(), 3);
  EXPECT_GT(info.metrics().training_seconds(), 0);
  grpc::ClientContext gctx;
  v1::GetModelRequest greq;
  greq.set_model_id(info.model_id());
  greq.set_include_model(true);
  v1::ModelInfo full;
  ASSERT_TRUE(stub->GetModel(&gctx, greq, &full).ok());
  EXPECT_GE(full.history_size(), 1);
  EXPECT_EQ(full.model().format(), "labelloop.model.v1");
  EXPECT_EQ(full.model().feature_dim(), 8);
  EXPECT_EQ(full.model().layers_size(), 1);
  EXPECT_NE(full.model_json().find("\"standardization\""), std::string::npos);

  // Predictions for every unlabeled item, then models.ready.
  EXPECT_EQ(world_->Count("SELECT sum(row_count) FROM training.v_prediction_chunks WHERE "
                          "model_id = " +
                          std::to_string(info.model_id())),
            200);
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        std::lock_guard lock(mu);
        for (const auto& m : ready) {
          if (m.find("\"model_id\":" + std::to_string(info.model_id())) != std::string::npos) {
            return true;
          }
        }
        return false;
      },
      seconds(10)));

  // Predict by item and by raw vector; a wrong length is named.
  grpc::ClientContext pctx;
  v1::PredictRequest preq;
  preq.set_project_id(project);
  preq.add_item_ids(ids[301]);
  auto* vec = preq.add_vectors();
  const auto blobs = Blobs(500, 300, 8, kClasses, 1);
  for (float f : blobs.features[302]) vec->add_values(f);
  v1::PredictResponse presp;
  ASSERT_TRUE(stub->Predict(&pctx, preq, &presp).ok());
  ASSERT_EQ(presp.results_size(), 2);
  EXPECT_EQ(presp.results(0).predicted(0), kClasses[301 % 3]);
  EXPECT_EQ(presp.results(1).predicted(0), kClasses[302 % 3]);
  EXPECT_EQ(presp.results(0).probabilities_size(), 3);
  grpc::ClientContext bctx;
  v1::PredictRequest bad;
  bad.set_model_id(info.model_id());
  bad.add_vectors()->add_values(1.0f);
  EXPECT_EQ(stub->Predict(&bctx, bad, &presp).error_message().rfind("vectors[0]", 0), 0u);
  sub.Stop();
}

TEST_F(TrainingE2E, BadSpecTooFewLabelsUnknownProjectAndOneLiveJob) {
  auto svc = Start("w1", {"--worker-enabled", "false"});
  auto stub = v1::TrainingService::NewStub(svc->Channel());
  const int64_t project = world_->CreateProject("single", kClasses);
  // Labels only for "cat" and "dog", two each: below the minimum of three.
  Items few;
  few.features = {{1, 2}, {1, 3}, {4, 5}, {4, 6}};
  few.labels = {"cat", "cat", "dog", "dog"};
  world_->AddItems(project, few);
  int64_t job = 0;

  v1::ModelSpec bad;
  bad.set_epochs(0);
  auto st = StartJob(*stub, project, bad, &job);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("spec.epochs"), std::string::npos) << st.error_message();
  bad = {};
  bad.add_hidden_units(8);
  st = StartJob(*stub, project, bad, &job);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("spec.hidden_units"), std::string::npos);
  bad = {};
  bad.set_learning_rate(-1);
  EXPECT_NE(StartJob(*stub, project, bad, &job).error_message().find("spec.learning_rate"),
            std::string::npos);

  st = StartJob(*stub, project, {}, &job);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("cat=2"), std::string::npos) << st.error_message();
  EXPECT_EQ(StartJob(*stub, 999999, {}, &job).error_code(), grpc::StatusCode::NOT_FOUND);

  few.labels = {"cat", "eel", "dog", "eel"};
  world_->AddItems(project, few);  // now cat 3, dog 3, eel 2
  ASSERT_TRUE(StartJob(*stub, project, {}, &job).ok());
  int64_t second = 0;
  st = StartJob(*stub, project, {}, &second);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(st.error_message().find(std::to_string(job)), std::string::npos);
  EXPECT_EQ(world_->Count("SELECT count(*) FROM training.jobs"), 1);

  // Cancelling the pending job ends it at once; cancelling again is harmless.
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::CancelTrainingRequest req;
    req.set_job_id(job);
    v1::TrainingJob resp;
    ASSERT_TRUE(stub->CancelTraining(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.state(), v1::TRAINING_JOB_STATE_CANCELLED);
  }
}

TEST_F(TrainingE2E, CancelStopsARunningJob) {
  const int64_t project = BigProject();
  auto svc = Start("w1");
  auto stub = v1::TrainingService::NewStub(svc->Channel());
  int64_t job = 0;
  ASSERT_TRUE(StartJob(*stub, project, SlowSpec(), &job).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return Epoch(job) >= 1; }, seconds(60))) << svc->Log();
  grpc::ClientContext ctx;
  v1::CancelTrainingRequest req;
  req.set_job_id(job);
  v1::TrainingJob resp;
  ASSERT_TRUE(stub->CancelTraining(&ctx, req, &resp).ok());
  ASSERT_TRUE(WaitState(job, "CANCELLED", seconds(20))) << svc->Log();
  EXPECT_LT(Epoch(job), 40);
  EXPECT_EQ(world_->Count("SELECT count(*) FROM training.models"), 0);
  EXPECT_NE(world_->Query("SELECT message FROM training.jobs")[0][0].as<std::string>().find(
                "cancelled during epoch"),
            std::string::npos);
}

TEST_F(TrainingE2E, KilledWorkerJobFinishesOnAnotherReplica) {
  const int64_t project = BigProject();
  auto a = Start("worker-a");
  auto stub = v1::TrainingService::NewStub(a->Channel());
  int64_t job = 0;
  ASSERT_TRUE(StartJob(*stub, project, SlowSpec(), &job).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return Epoch(job) >= 1; }, seconds(60))) << a->Log();
  ASSERT_EQ(State(job), "RUNNING");
  a->process().Signal(SIGKILL);
  a->process().Wait(seconds(10));
  auto b = Start("worker-b");
  ASSERT_TRUE(WaitState(job, "SUCCEEDED", seconds(120))) << b->Log();
  auto row = world_->Query("SELECT attempts, epoch, model_id IS NOT NULL FROM training.jobs");
  EXPECT_EQ(row[0][0].as<int>(), 2);
  EXPECT_TRUE(row[0][2].as<bool>());
  EXPECT_EQ(world_->Count("SELECT count(*) FROM training.models"), 1);
  EXPECT_EQ(world_->Count("SELECT sum(row_count) FROM training.prediction_chunks"), 1000);
  EXPECT_NE(b->Log().find("claimed, attempt 2/3"), std::string::npos);
}

TEST_F(TrainingE2E, TwoReplicasStartedTogetherRunAQueuedJobOnce) {
  const int64_t project = world_->CreateProject("single", kClasses);
  world_->AddItems(project, Blobs(900, 600, 8, kClasses, 3));
  {
    auto queue = Start("queue", {"--worker-enabled", "false"});
    auto stub = v1::TrainingService::NewStub(queue->Channel());
    int64_t job = 0;
    v1::ModelSpec spec;
    spec.set_epochs(10);
    ASSERT_TRUE(StartJob(*stub, project, spec, &job).ok());
    queue->Stop();
  }
  auto a = std::make_unique<testing::ServiceUnderTest>(
      "labelloop-training", world_->url(), redis_,
      std::vector<std::string>{"--worker-id", "a", "--job-poll-ms", "50"});
  auto b = std::make_unique<testing::ServiceUnderTest>(
      "labelloop-training", world_->url(), redis_,
      std::vector<std::string>{"--worker-id", "b", "--job-poll-ms", "50"});
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return world_->Count("SELECT count(*) FROM training.jobs WHERE state = 'SUCCEEDED'") == 1;
      },
      seconds(60)));
  auto row = world_->Query("SELECT attempts, epoch FROM training.jobs");
  EXPECT_EQ(row[0][0].as<int>(), 1);
  EXPECT_EQ(world_->Count("SELECT count(*) FROM training.models"), 1);
  EXPECT_EQ(world_->Count("SELECT count(*) FROM training.job_epochs"), row[0][1].as<int>());
  const bool ran_a = a->Log().find("claimed, attempt") != std::string::npos;
  const bool ran_b = b->Log().find("claimed, attempt") != std::string::npos;
  EXPECT_NE(ran_a, ran_b);
}

TEST_F(TrainingE2E, AJobWhoseWorkersKeepDyingFailsWithTheReason) {
  const int64_t project = world_->CreateProject("single", kClasses);
  world_->AddItems(project, Blobs(90, 60, 4, kClasses, 5));
  // A job whose worker vanished (lease expired) on its last attempt.
  auto svc = Start("w1", {"--worker-enabled", "false"});  // creates the training schema
  world_->Query(
      "INSERT INTO training.jobs (project_id, spec, state, attempts, max_attempts, "
      "claimed_by, lease_until, epochs) VALUES (" +
      std::to_string(project) +
      ", '{\"epochs\": 3}', 'RUNNING', 3, 3, 'ghost-1', now() - interval '1 minute', 3)");
  svc->Stop();
  auto worker = Start("w2");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return world_->Count("SELECT count(*) FROM training.jobs WHERE state = 'FAILED'") == 1;
      },
      seconds(30)))
      << worker->Log();
  const auto message = world_->Query("SELECT message FROM training.jobs")[0][0].as<std::string>();
  EXPECT_NE(message.find("gave up after 3 attempts"), std::string::npos) << message;
  EXPECT_NE(message.find("ghost-1"), std::string::npos) << message;
  // The project is free again: a new job starts and runs.
  auto stub = v1::TrainingService::NewStub(worker->Channel());
  int64_t job = 0;
  v1::ModelSpec spec;
  spec.set_epochs(3);
  ASSERT_TRUE(StartJob(*stub, project, spec, &job).ok());
  EXPECT_TRUE(WaitState(job, "SUCCEEDED", seconds(30))) << worker->Log();
}

TEST_F(TrainingE2E, SigtermHandsTheRunningJobBack) {
  const int64_t project = BigProject();
  auto a = Start("worker-a");
  auto stub = v1::TrainingService::NewStub(a->Channel());
  int64_t job = 0;
  ASSERT_TRUE(StartJob(*stub, project, SlowSpec(), &job).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return Epoch(job) >= 1; }, seconds(60))) << a->Log();
  EXPECT_EQ(a->Stop(seconds(15)), 0) << a->Log();
  // Released, not failed: back to PENDING with the attempt not counted.
  auto row = world_->Query("SELECT state, attempts, claimed_by IS NULL FROM training.jobs");
  EXPECT_EQ(row[0][0].as<std::string>(), "PENDING");
  EXPECT_EQ(row[0][1].as<int>(), 0);
  EXPECT_TRUE(row[0][2].as<bool>());
}

TEST_F(TrainingE2E, AutoRetrainsAfterNNewLabels) {
  const int64_t project = world_->CreateProject("multi", kClasses);
  auto svc = Start("w1", {"--retrain-reconcile-ms", "600000"});  // only the message wakes it
  auto stub = v1::TrainingService::NewStub(svc->Channel());
  grpc::ClientContext ctx;
  v1::SetRetrainPolicyRequest req;
  req.set_project_id(project);
  req.set_retrain_every(30);
  req.mutable_spec()->set_epochs(5);
  v1::RetrainPolicy policy;
  ASSERT_TRUE(stub->SetRetrainPolicy(&ctx, req, &policy).ok());
  EXPECT_EQ(policy.retrain_every(), 30);
  EXPECT_EQ(policy.spec().epochs(), 5);

  redis::Client pub({.host = redis_.first, .port = redis_.second});
  const std::string msg =
      "{\"type\":\"labels.submitted\",\"version\":1,\"project_id\":" + std::to_string(project) +
      ",\"item_id\":1,\"item_labeled\":true}";
  Items items = Blobs(40, 29, 4, kClasses, 4);
  items.labels[0] = "cat,dog";  // multi-label consensus
  world_->AddItems(project, items);
  pub.Publish("labelloop.labels.submitted", msg);
  // 29 labels: not due yet.
  EXPECT_FALSE(
      testing::WaitFor([&] { return world_->Count("SELECT count(*) FROM training.jobs") > 0; },
                       std::chrono::milliseconds(800)));
  world_->AddItems(project, Blobs(3, 3, 4, kClasses, 4));
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        pub.Publish("labelloop.labels.submitted", msg);
        return world_->Count(
                   "SELECT count(*) FROM training.jobs WHERE state = 'SUCCEEDED' AND "
                   "trigger = 'auto'") == 1;
      },
      seconds(60)))
      << svc->Log();
  auto m = world_->Query(
      "SELECT multi_label, model_json->'layers'->0->>'activation' FROM "
      "training.models");
  EXPECT_TRUE(m[0][0].as<bool>());
  EXPECT_EQ(m[0][1].as<std::string>(), "sigmoid");
  // Not due again until 30 more labels arrive: still one job.
  pub.Publish("labelloop.labels.submitted", msg);
  EXPECT_FALSE(
      testing::WaitFor([&] { return world_->Count("SELECT count(*) FROM training.jobs") > 1; },
                       std::chrono::milliseconds(800)));
}

}  // namespace
}  // namespace labelloop::training_e2e
