#include "services/training/worker.hpp"

#include <spdlog/spdlog.h>

#include "common/bus/channels.hpp"
#include "services/training/convert.hpp"
#include "services/training/storage/pg_read.hpp"

namespace labelloop::training {
namespace {

// A failure that retrying cannot fix (bad data, too few labels): the job FAILS at once.
struct Permanent {
  std::string message;
};

}  // namespace

std::string ProgressMessage(const storage::JobRow& job, const EpochStats* epoch) {
  nlohmann::json j = {{"type", "training.progress"},
                      {"version", 1},
                      {"job_id", job.id},
                      {"project_id", job.project_id},
                      {"state", job.state},
                      {"epoch", epoch ? epoch->epoch : job.epoch},
                      {"epochs", job.epochs},
                      {"attempts", job.attempts},
                      {"message", job.message},
                      {"model_id", job.model_id}};
  if (epoch) {
    j["train_loss"] = epoch->train_loss;
    j["train_accuracy"] = epoch->train_accuracy;
    j["val_loss"] = epoch->val_loss;
    j["val_accuracy"] = epoch->val_accuracy;
  }
  return j.dump();
}

Worker::Worker(storage::Store& store, redis::Client& redis, WorkerOptions options)
    : store_(store), redis_(redis), options_(std::move(options)) {}

Worker::~Worker() { Drain(); }

void Worker::Count(const std::string& name, const std::string& help, double by,
                   const metrics::Labels& labels) {
  if (options_.registry) options_.registry->GetCounter(name, help, labels).Increment(by);
}

void Worker::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Worker::Wake() {
  std::lock_guard lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

void Worker::CancelIfRunning(int64_t job_id) {
  if (job_id == 0 || current_job_.load() != job_id) return;
  // The message is only a wake-up: PostgreSQL says whether this job was really asked to
  // stop (another deployment or test sharing the Redis may use the same job id).
  try {
    if (store_.Renew(job_id, options_.worker_id, options_.lease_seconds) ==
        storage::Lease::kCancelRequested) {
      cancel_ = true;
    }
  } catch (const std::exception& e) {
    spdlog::warn("job {}: cancel check failed ({}); the heartbeat will see it", job_id, e.what());
  }
}

void Worker::Drain() {
  draining_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
}

void Worker::PublishProgress(const storage::JobRow& job, const EpochStats* epoch) {
  redis_.Publish(bus::kTrainingProgress, ProgressMessage(job, epoch));
}

void Worker::Loop() {
  spdlog::info("training worker {} started (lease {} s)", options_.worker_id,
               options_.lease_seconds);
  while (!draining_) {
    try {
      for (const auto& job : store_.ReapExpired()) {
        spdlog::warn("job {} {}: {}", job.id, job.state, job.message);
        PublishProgress(job);
      }
      if (auto job = store_.Claim(options_.worker_id, options_.lease_seconds)) {
        RunJob(std::move(*job));
        continue;  // look for more work at once
      }
    } catch (const std::exception& e) {
      spdlog::error("training worker: {}", e.what());
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms),
                 [this] { return woken_ || draining_.load(); });
    woken_ = false;
  }
  spdlog::info("training worker {} stopped", options_.worker_id);
}

void Worker::Heartbeat(int64_t job_id, std::atomic<bool>* done) {
  while (!*done) {
    // Short sleeps so the thread ends promptly with the job.
    for (int waited = 0; waited < options_.heartbeat_ms && !*done; waited += 20) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (*done) break;
    try {
      switch (store_.Renew(job_id, options_.worker_id, options_.lease_seconds)) {
        case storage::Lease::kHeld:
          break;
        case storage::Lease::kCancelRequested:
          cancel_ = true;
          break;
        case storage::Lease::kLost:
          spdlog::warn("job {}: lease lost; another worker owns it now", job_id);
          lost_ = true;
          break;
      }
    } catch (const std::exception& e) {
      spdlog::warn("job {}: lease renewal failed: {}", job_id, e.what());
    }
  }
}

void Worker::RunJob(storage::JobRow job) {
  cancel_ = job.cancel_requested;
  lost_ = false;
  current_job_ = job.id;
  std::atomic<bool> done{false};
  std::thread heartbeat([&] { Heartbeat(job.id, &done); });
  spdlog::info("job {} (project {}) claimed, attempt {}/{}", job.id, job.project_id, job.attempts,
               job.max_attempts);
  PublishProgress(job);
  std::string final_state;
  try {
    RunClaimed(job);
    final_state = job.state;
  } catch (const Permanent& p) {
    job.message = p.message;
    if (store_.Finish(job.id, options_.worker_id, "FAILED", p.message)) job.state = "FAILED";
  } catch (const std::exception& e) {
    spdlog::error("job {}: {}", job.id, e.what());
    try {
      job.message = e.what();
      job.state = store_.RetryOrFail(job.id, options_.worker_id, e.what());
      if (job.state == "PENDING") redis_.Publish(bus::kTrainingJobs, "{\"type\":\"training.job\"}");
    } catch (const std::exception& e2) {
      spdlog::error("job {}: could not record the failure: {}", job.id, e2.what());
    }
  }
  done = true;
  heartbeat.join();
  current_job_ = 0;
  Count("labelloop_training_jobs_total", "training job runs by how they ended", 1,
        {{"outcome", job.state.empty() ? "lease_lost" : job.state}});
  if (!job.state.empty() && job.state != "RUNNING") {
    if (auto fresh = store_.GetJob(job.id)) PublishProgress(*fresh);
  }
  spdlog::info("job {} ended in state {} {}", job.id, job.state, job.message);
}

// Handles stop requests (cancel, lost lease, drain) after the trainer or the predictor
// stopped early. Returns true when the job must end now.
static bool HandleStop(storage::Store& store, const std::string& worker, storage::JobRow& job,
                       bool lost, bool cancel, bool draining, redis::Client& redis) {
  if (lost) {
    job.state = "";  // not ours any more: write nothing
    return true;
  }
  if (cancel) {
    job.message = "cancelled during epoch " + std::to_string(job.epoch + 1) + " of " +
                  std::to_string(job.epochs);
    if (store.Finish(job.id, worker, "CANCELLED", job.message)) job.state = "CANCELLED";
    return true;
  }
  if (draining) {
    if (store.Release(job.id, worker)) {
      job.state = "PENDING";
      job.message = "released by a draining worker";
      redis.Publish(bus::kTrainingJobs, nlohmann::json({{"type", "training.job"},
                                                        {"version", 1},
                                                        {"job_id", job.id},
                                                        {"project_id", job.project_id}})
                                            .dump());
    }
    return true;
  }
  return false;
}

void Worker::RunClaimed(storage::JobRow& job) {
  auto resolved = SpecFromJson(job.spec);
  if (!resolved.ok()) throw Permanent{"stored spec is invalid: " + resolved.error};
  const ModelSpec& spec = resolved.spec;
  auto project = storage::LoadProject(store_.pool(), job.project_id);
  if (!project) throw Permanent{"project " + std::to_string(job.project_id) + " does not exist"};

  int64_t model_id = job.model_id;
  int model_version = 0;
  PortableModel model;
  auto stop = [this] { return ShouldStop(); };
  if (model_id == 0) {
    auto loaded = storage::LoadLabeled(store_.pool(), *project, stop);
    if (ShouldStop()) {
      HandleStop(store_, options_.worker_id, job, lost_, cancel_, draining_, redis_);
      return;
    }
    if (!loaded.error.empty()) throw Permanent{loaded.error};
    const auto why = CheckEnoughLabels(loaded.data, options_.min_labels_per_class);
    if (!why.empty()) throw Permanent{why};
    TrainCallbacks callbacks;
    callbacks.should_stop = stop;
    callbacks.on_epoch = [&](const EpochStats& st) {
      if (!store_.RecordEpoch(job.id, options_.worker_id, st)) {
        lost_ = true;
        return;
      }
      job.epoch = st.epoch;
      PublishProgress(job, &st);
      Count("labelloop_training_epochs_total", "training epochs completed");
    };
    auto outcome = Train(loaded.data, spec, callbacks);
    if (outcome.stopped || ShouldStop()) {
      HandleStop(store_, options_.worker_id, job, lost_, cancel_, draining_, redis_);
      return;
    }
    model = std::move(outcome.model);
    v1::Model proto;
    ModelToProto(model, &proto);
    auto stored = store_.InsertModel(job.id, options_.worker_id, job.project_id, model,
                                     ModelToJson(model).dump(), proto.SerializeAsString());
    if (!stored) {
      job.state = "";
      return;
    }
    model_id = stored->first;
    model_version = stored->second;
    job.model_id = model_id;
  } else {
    // An earlier attempt stored the model; only the predictions remain.
    auto row = store_.GetModel(model_id, /*with_body=*/true);
    if (!row) throw Permanent{"model " + std::to_string(model_id) + " vanished"};
    std::string error;
    auto parsed = ModelFromJson(nlohmann::json::parse(row->model_json), &error);
    if (!parsed) throw Permanent{"stored model is unreadable: " + error};
    model = std::move(*parsed);
    model_version = row->version;
  }

  // Predict every unlabeled item in batches (item order); rows go out a packed chunk at a
  // time as they are computed.
  storage::PredictionSink sink(store_.pool(), model_id, static_cast<int>(model.classes.size()));
  int64_t skipped = 0;
  storage::StreamItems(
      store_.pool(), job.project_id, /*labeled=*/false, options_.predict_batch,
      [&](const storage::ItemBatch& b) {
        std::vector<size_t> usable;
        for (size_t i = 0; i < b.item_ids.size(); ++i) {
          if (static_cast<int>(b.features[i].size()) == model.feature_dim) {
            usable.push_back(i);
          } else {
            ++skipped;
          }
        }
        Eigen::MatrixXf x(model.feature_dim, static_cast<Eigen::Index>(usable.size()));
        for (size_t j = 0; j < usable.size(); ++j) {
          x.col(static_cast<Eigen::Index>(j)) =
              Eigen::Map<const Eigen::VectorXf>(b.features[usable[j]].data(), model.feature_dim);
        }
        const Eigen::MatrixXf p = PredictProbabilities(model, x);
        for (size_t j = 0; j < usable.size(); ++j) {
          sink.Add(b.item_ids[usable[j]], p.col(static_cast<Eigen::Index>(j)).data(),
                   static_cast<size_t>(p.rows()));
        }
        return !ShouldStop();
      });
  if (ShouldStop()) {
    HandleStop(store_, options_.worker_id, job, lost_, cancel_, draining_, redis_);
    return;
  }
  if (!sink.Complete(job.id, options_.worker_id)) {
    job.state = "";
    return;
  }
  Count("labelloop_training_predictions_total", "unlabeled items predicted",
        static_cast<double>(sink.rows()));
  if (skipped > 0)
    spdlog::warn("job {}: {} unlabeled items skipped (feature length)", job.id, skipped);
  job.state = "SUCCEEDED";
  job.epoch = model.metrics.epochs_run;
  redis_.Publish(bus::kModelsReady, nlohmann::json({{"type", "models.ready"},
                                                    {"version", 1},
                                                    {"project_id", job.project_id},
                                                    {"model_id", model_id},
                                                    {"model_version", model_version}})
                                        .dump());
  spdlog::info("job {}: model {} (v{}) ready, {} predictions, accuracy {:.4f}", job.id, model_id,
               model_version, sink.rows(), model.metrics.accuracy);
}

}  // namespace labelloop::training
