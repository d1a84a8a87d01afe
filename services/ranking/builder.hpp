// Keeps every project's live order in line with PostgreSQL: rebuilds a project when its
// latest ready model, strategy or multi-label aggregate changed (on models.ready, on
// SetStrategy, and on a timer so a lost message only delays), drops items found labeled
// at the head of an order, and persists the scores of each new order. One worker thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>

#include "common/metrics/metrics.hpp"
#include "services/ranking/ranker.hpp"
#include "services/ranking/storage/store.hpp"

namespace labelloop::ranking {

struct BuilderOptions {
  uint64_t random_seed = 0;
  int threads = 2;
  int load_connections = 2;  // parallel COPYs of a model's predictions
  int64_t load_rows_per_connection = 50000;
  std::chrono::milliseconds reconcile_interval{5000};
  bool persist_scores = true;
  size_t head_check = 2000;  // items at the head of an order checked for labels per reconcile
};

class Builder {
 public:
  Builder(storage::Store& store, Ranker& ranker, BuilderOptions options,
          metrics::Registry& metrics);
  ~Builder();
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  void Start();  // reconciles every project at once, then on the timer
  void Stop();

  void RequestRefresh(int64_t project_id);
  void RequestReconcile();

  // Brings one project up to date now (on the caller's thread). Throws on database errors.
  void Refresh(int64_t project_id);
  // Every project with a ready model, plus the labeled-head check.
  void Reconcile();

 private:
  void Loop();
  void Build(const ModelInfo& model, const storage::ProjectSettings& settings);
  void CheckHead(int64_t project_id);

  storage::Store& store_;
  Ranker& ranker_;
  BuilderOptions options_;
  metrics::Counter& builds_;
  metrics::Counter& build_failures_;
  metrics::Counter& rejected_;
  metrics::Gauge& last_build_seconds_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<int64_t> pending_;
  bool reconcile_ = false;
  bool stop_ = false;
  std::mutex build_mu_;  // Refresh from the loop and from callers never overlap
  std::thread thread_;
};

}  // namespace labelloop::ranking
