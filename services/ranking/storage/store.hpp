// Everything the ranking service reads from and writes to PostgreSQL: training's and
// labeling's published views (read-only), and its own schema. All methods throw on
// database errors (std::exception); callers turn them into statuses or log lines.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/ranking/order.hpp"

namespace labelloop::ranking::storage {

struct ProjectSettings {
  bool exists = false;
  bool multi_label = false;  // label_kind = 'multi'
  Strategy strategy = kDefaultStrategy;
  Aggregate aggregate = Aggregate::kMean;
  std::string source;  // "ranking", "project" or "default": where the strategy came from
};

struct SavedOrder {
  int64_t model_id = 0;
  std::string aggregate;
  int64_t random_seed = 0;
  int64_t rejected = 0;
};

class Store {
 public:
  Store(pg::Pool& pool, std::string pg_url);

  // The latest model with predictions_ready of every project / of one project.
  std::vector<ModelInfo> LatestReadyModels();
  std::optional<ModelInfo> LatestReadyModel(int64_t project_id);

  // ranking.project_strategy, else v_projects.settings, else the defaults.
  ProjectSettings Settings(int64_t project_id);
  void SaveStrategy(int64_t project_id, Strategy strategy, std::optional<Aggregate> aggregate);

  // The model's predictions from training.v_prediction_chunks (binary COPY of the packed
  // chunks; `connections` COPYs over consecutive chunk ranges in parallel, each of at least
  // rows_per_connection rows). Throws naming the chunk when one is corrupt.
  PredictionMatrix LoadPredictions(const ModelInfo& model, int connections = 1,
                                   int64_t rows_per_connection = 50000);
  // Items of the project that are labeled.
  std::vector<int64_t> LabeledItems(int64_t project_id);
  // Which of the given items are labeled by now.
  std::vector<int64_t> LabeledAmong(const std::vector<int64_t>& item_ids);
  // Feature vectors of the given items (empty when unknown), in the given order.
  std::vector<std::vector<float>> Features(const std::vector<int64_t>& item_ids);

  // Replaces the project's persisted scores with the table's (packed chunks).
  void SaveScores(const ScoreTable& table, int64_t random_seed);
  std::optional<SavedOrder> SavedOrderOf(int64_t project_id);
  // Persisted scores of (project, model): ids and rows of 4 scores.
  void LoadScores(int64_t project_id, int64_t model_id, std::vector<int64_t>& ids,
                  std::vector<float>& scores4);

 private:
  pg::Pool& pool_;
  std::string url_;
};

}  // namespace labelloop::ranking::storage
