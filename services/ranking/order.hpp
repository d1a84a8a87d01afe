// The ranked order of one project: the scores of its unlabeled items under every base
// strategy (from one model) and the items sorted by the project's strategy. An Order is
// immutable once built and shared with readers through shared_ptr; only the "dropped"
// flags (items labeled since) change, atomically. Plain C++: no I/O.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "services/ranking/strategy.hpp"

namespace labelloop::ranking {

// Class probabilities of a model's items, row-major (ids.size() x classes).
struct PredictionMatrix {
  std::vector<int64_t> ids;
  std::vector<float> probabilities;
  int classes = 0;
};

struct ModelInfo {
  int64_t project_id = 0;
  int64_t model_id = 0;
  int32_t version = 0;
  bool multi_label = false;
  int classes = 0;
};

struct BuildOptions {
  Strategy strategy = kDefaultStrategy;
  Aggregate aggregate = Aggregate::kMean;
  uint64_t random_seed = 0;  // the base seed; mixed with project and model
  int threads = 1;
};

// Scores of every item in the order (rows in ascending item id), per base strategy.
class ScoreTable {
 public:
  ScoreTable(ModelInfo model, Aggregate aggregate, std::vector<int64_t> ids,
             std::array<std::vector<float>, kBaseStrategies> scores, int64_t rejected);
  const ModelInfo& model() const { return model_; }
  Aggregate aggregate() const { return aggregate_; }
  size_t size() const { return ids_.size(); }
  std::span<const int64_t> ids() const { return ids_; }
  std::span<const float> scores(int base) const { return scores_[base]; }
  int64_t rejected() const { return rejected_; }
  std::optional<uint32_t> RowOf(int64_t item_id) const;
  bool dropped(uint32_t row) const { return dropped_[row].load(std::memory_order_relaxed) != 0; }
  // Marks an item dropped; true when it was live before.
  bool Drop(int64_t item_id);
  int64_t live() const { return live_.load(); }

 private:
  ModelInfo model_;
  Aggregate aggregate_;
  std::vector<int64_t> ids_;
  std::array<std::vector<float>, kBaseStrategies> scores_;
  int64_t rejected_;
  std::unique_ptr<std::atomic<uint8_t>[]> dropped_;
  std::atomic<int64_t> live_;
};

struct Pick {
  int64_t item_id = 0;
  float score = 0;
  int64_t rank = 0;  // position in the order of the strategy used
};

class Order {
 public:
  Order(std::shared_ptr<ScoreTable> table, Strategy strategy,
        std::chrono::system_clock::time_point built_at, double build_seconds);
  const ScoreTable& table() const { return *table_; }
  ScoreTable& mutable_table() const { return *table_; }
  std::shared_ptr<ScoreTable> shared_table() const { return table_; }
  Strategy strategy() const { return strategy_; }
  std::chrono::system_clock::time_point built_at() const { return built_at_; }
  double build_seconds() const { return build_seconds_; }
  void set_build_seconds(double s) { build_seconds_ = s; }  // before it is shared

  // The rows sorted for a strategy (computed once per base strategy, on first use).
  const std::vector<uint32_t>& Ranked(Strategy s) const;

  // The first n live items of strategy s's order, skipping dropped and excluded ones.
  // (batch_diverse gives the entropy order; the diverse pick is SelectDiverse.)
  std::vector<Pick> Next(size_t n, Strategy s, const std::unordered_set<int64_t>& exclude) const;

  // The score and rank of an item, nullopt when unknown or dropped.
  std::optional<Pick> Find(int64_t item_id, Strategy s) const;

 private:
  std::shared_ptr<ScoreTable> table_;
  Strategy strategy_;
  std::chrono::system_clock::time_point built_at_;
  double build_seconds_;
  mutable std::array<std::once_flag, kBaseStrategies> once_;
  mutable std::array<std::vector<uint32_t>, kBaseStrategies> ranked_;
  mutable std::array<std::once_flag, kBaseStrategies> pos_once_;
  mutable std::array<std::vector<uint32_t>, kBaseStrategies> position_;  // row -> rank
};

// Drops labeled items and bad rows, scores every base strategy and returns the table.
// matrix.ids need not be sorted. labeled: item ids to leave out (any order).
std::shared_ptr<ScoreTable> BuildTable(const ModelInfo& model, PredictionMatrix matrix,
                                       std::vector<int64_t> labeled, const BuildOptions& options);

// A table from persisted scores (rows of [least_confidence, margin, entropy, random]).
std::shared_ptr<ScoreTable> TableFromScores(const ModelInfo& model, Aggregate aggregate,
                                            std::vector<int64_t> ids, std::vector<float> scores4,
                                            int64_t rejected, std::vector<int64_t> labeled);

// The batch-diverse pick from a pool (best first) whose features are given per pool entry
// (empty = unknown: such entries are only used when too few have features).
std::vector<Pick> SelectDiverse(const std::vector<Pick>& pool,
                                const std::vector<std::vector<float>>& features, size_t n);

struct HistogramBin {
  double lower = 0;
  double upper = 0;
  int64_t count = 0;
};

struct Histogram {
  std::vector<HistogramBin> bins;
  int64_t items = 0;
  double mean = 0;
};

// Equal-width bins over [min, max] of the live items' scores.
Histogram Distribution(const Order& order, Strategy s, int bins);

}  // namespace labelloop::ranking
