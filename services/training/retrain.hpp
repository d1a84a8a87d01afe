// Starting jobs (from StartTraining and from the auto-retraining policy) and the
// auto-retrainer: listens to labelloop.labels.submitted, starts a job when a project has
// gathered "retrain_every" new labels since its last job, and reconciles from PostgreSQL
// at start-up and on a timer. The unique partial index on training.jobs keeps one live
// job per project however many replicas race.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/redis/redis.hpp"
#include "services/training/spec.hpp"
#include "services/training/storage/store.hpp"

namespace labelloop::training {

struct JobRules {
  int min_labels_per_class = 2;
  int max_attempts = 3;
};

struct StartResult {
  enum class Code { kOk, kInvalidSpec, kNoProject, kTooFewLabels, kAlreadyLive };
  Code code = Code::kOk;
  std::string message;
  int64_t job_id = 0;
  ModelSpec spec;
};

// Validates the spec and the labels, inserts the job, then publishes the wake-up.
StartResult StartJob(storage::Store& store, redis::Client& redis, const JobRules& rules,
                     int64_t project_id, const PartialSpec& partial, const std::string& trigger);

class Retrainer {
 public:
  Retrainer(storage::Store& store, redis::Client& redis, JobRules rules, int reconcile_ms);
  ~Retrainer();
  Retrainer(const Retrainer&) = delete;
  Retrainer& operator=(const Retrainer&) = delete;

  void Start();
  void Stop();
  // A labels.submitted payload.
  void OnLabelsSubmitted(const std::string& payload);
  // Checks every project (or one) and starts the jobs that are due.
  void Reconcile(std::optional<int64_t> project_id = std::nullopt);

 private:
  storage::Store& store_;
  redis::Client& redis_;
  JobRules rules_;
  int reconcile_ms_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace labelloop::training
