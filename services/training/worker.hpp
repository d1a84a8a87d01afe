// The training worker: takes jobs from training.jobs (claimed with a lease renewed by a
// heartbeat), trains, stores the model, predicts the project's unlabeled items and
// announces the model. Woken by labelloop.training.jobs and by a timer, so a lost
// message only delays a job. On drain it stops taking jobs and hands the running one
// back (PENDING, lease cleared) within one batch.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics/metrics.hpp"
#include "common/redis/redis.hpp"
#include "services/training/storage/store.hpp"

namespace labelloop::training {

struct WorkerOptions {
  std::string worker_id;
  int lease_seconds = 30;
  int heartbeat_ms = 1000;  // lease renewal and cancel check
  int poll_ms = 2000;       // reconcile with PostgreSQL without a wake-up
  int min_labels_per_class = 2;
  int predict_batch = 4096;
  metrics::Registry* registry = nullptr;  // jobs by outcome, epochs, predictions
};

// The JSON published on labelloop.training.progress.
std::string ProgressMessage(const storage::JobRow& job, const EpochStats* epoch);

class Worker {
 public:
  Worker(storage::Store& store, redis::Client& redis, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Start();
  void Wake();
  // A cancel message for job_id: stop at the next batch when it runs here.
  void CancelIfRunning(int64_t job_id);
  // Stop taking jobs, release the running one, join.
  void Drain();
  int64_t current_job() const { return current_job_.load(); }

 private:
  void Loop();
  void RunJob(storage::JobRow job);
  void RunClaimed(storage::JobRow& job);
  bool ShouldStop() const { return draining_ || cancel_ || lost_; }
  void PublishProgress(const storage::JobRow& job, const EpochStats* epoch = nullptr);
  void Heartbeat(int64_t job_id, std::atomic<bool>* done);
  void Count(const std::string& name, const std::string& help, double by = 1,
             const metrics::Labels& labels = {});

  storage::Store& store_;
  redis::Client& redis_;
  WorkerOptions options_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> cancel_{false};
  std::atomic<bool> lost_{false};
  std::atomic<int64_t> current_job_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace labelloop::training
