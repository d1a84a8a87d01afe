// The training schema: the job queue (claimed with leases), per-epoch history, models,
// predictions and the auto-retraining policy. Every query is parameterized; every write
// that a worker makes is conditioned on still holding the job's lease.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"
#include "common/prediction_chunks/prediction_chunks.hpp"
#include "services/training/trainer.hpp"

namespace labelloop::training::storage {

struct JobRow {
  int64_t id = 0;
  int64_t project_id = 0;
  std::string state;
  nlohmann::json spec;
  int attempts = 0;
  int max_attempts = 0;
  std::string claimed_by;
  int epoch = 0;
  int epochs = 0;
  bool cancel_requested = false;
  std::string message;
  int64_t model_id = 0;  // 0 = none yet
  std::string trigger;
  int64_t created_at = 0;  // unix seconds; 0 = not set
  int64_t started_at = 0;
  int64_t finished_at = 0;
};

struct ModelRow {
  int64_t id = 0;
  int64_t project_id = 0;
  int version = 0;
  int64_t job_id = 0;
  std::string model_type;
  bool multi_label = false;
  std::vector<std::string> classes;
  nlohmann::json metrics;
  nlohmann::json spec;
  int64_t labeled_items = 0;
  bool predictions_ready = false;
  int64_t created_at = 0;
  std::string model_json;   // only when asked for
  std::string model_proto;  // only when asked for
};

struct Policy {
  int64_t project_id = 0;
  int retrain_every = 0;
  int64_t labels_at_last_job = 0;
  nlohmann::json spec = nlohmann::json::object();
};

enum class Lease { kHeld, kCancelRequested, kLost };

class Store {
 public:
  explicit Store(pg::Pool& pool) : pool_(pool) {}

  // Inserts a PENDING job and records labeled_now as the project's labels at the last
  // job. nullopt when the project already has a live job (then *live_job is its id).
  std::optional<int64_t> CreateJob(int64_t project_id, const nlohmann::json& spec, int epochs,
                                   int max_attempts, const std::string& trigger,
                                   int64_t labeled_now, int64_t* live_job);
  std::optional<JobRow> GetJob(int64_t job_id);
  std::vector<JobRow> ListJobs(int64_t project_id, int limit);
  std::vector<EpochStats> Epochs(int64_t job_id);
  // PENDING -> CANCELLED at once; RUNNING -> cancel_requested. nullopt: no such job.
  std::optional<JobRow> Cancel(int64_t job_id);

  // Jobs whose worker vanished after their last attempt become FAILED (or CANCELLED when
  // a cancel was asked for). Returns them.
  std::vector<JobRow> ReapExpired();
  // Claims the oldest claimable job (PENDING, or RUNNING with an expired lease) for
  // `worker`, counting an attempt. Clears the epoch history unless the job already has a
  // model (then only its predictions remain to be done).
  std::optional<JobRow> Claim(const std::string& worker, int lease_seconds);
  Lease Renew(int64_t job_id, const std::string& worker, int lease_seconds);
  bool RecordEpoch(int64_t job_id, const std::string& worker, const EpochStats& stats);
  // Back to PENDING without counting the attempt (drain).
  bool Release(int64_t job_id, const std::string& worker);
  // Final state FAILED or CANCELLED with a message.
  bool Finish(int64_t job_id, const std::string& worker, const std::string& state,
              const std::string& message);
  // A transient failure: PENDING again while attempts remain, else FAILED. Returns the
  // new state ("" when the lease was lost).
  std::string RetryOrFail(int64_t job_id, const std::string& worker, const std::string& message);

  // Stores the model (next version of the project) and links it to the job.
  std::optional<std::pair<int64_t, int>> InsertModel(int64_t job_id, const std::string& worker,
                                                     int64_t project_id, const PortableModel& m,
                                                     const std::string& model_json,
                                                     const std::string& model_proto);
  std::vector<ModelRow> ListModels(int64_t project_id);
  std::optional<ModelRow> GetModel(int64_t model_id, bool with_body);
  std::optional<int64_t> LatestModel(int64_t project_id);

  Policy GetPolicy(int64_t project_id);
  Policy SetPolicy(int64_t project_id, int retrain_every, const nlohmann::json& spec);
  // Projects whose policy (training.project_training, else labeling settings
  // "retrain_every") is on and that have at least that many new labels since the last job.
  struct Due {
    int64_t project_id;
    int64_t labeled;
    nlohmann::json spec;
  };
  std::vector<Due> DueProjects(std::optional<int64_t> only_project);

  pg::Pool& pool() { return pool_; }

 private:
  pg::Pool& pool_;
};

}  // namespace labelloop::training::storage

namespace labelloop::training::storage {

// Writes one model's predictions as packed chunks (training.prediction_chunks, layout in
// common/prediction_chunks) in a single transaction that replaces any left by an earlier
// attempt and ends by setting predictions_ready and SUCCEEDED, so they appear all at once.
// Rows must come in ascending item id; one chunk is held in memory at a time.
class PredictionSink {
 public:
  PredictionSink(pg::Pool& pool, int64_t model_id, int classes);
  ~PredictionSink();
  PredictionSink(const PredictionSink&) = delete;
  PredictionSink& operator=(const PredictionSink&) = delete;
  // n must be the model's class count.
  void Add(int64_t item_id, const float* probabilities, size_t n);
  // Writes the last chunk, marks the model's predictions ready and the job SUCCEEDED, and
  // commits; false (nothing committed) when `worker` no longer holds the job.
  bool Complete(int64_t job_id, const std::string& worker);
  int64_t rows() const { return rows_; }
  int64_t chunks() const { return chunk_; }

 private:
  void WriteChunk();

  pg::Pool::Lease lease_;
  int64_t model_id_;
  int classes_;
  std::unique_ptr<pqxx::work> tx_;
  prediction_chunks::ChunkPacker packer_;
  int32_t chunk_ = 0;
  int64_t rows_ = 0;
};

}  // namespace labelloop::training::storage
