// Fixture data for the dl_manager tests: a database with the labeling and training
// schemas (their own migrations) and projects, items, labels, a model and
// predictions inserted directly, as the labeling and training services would.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"

namespace labelloop::dl_manager::testing {

struct SeedOptions {
  std::string name = "fixture";
  int items = 30;
  int labeled = 10;         // the first `labeled` items carry a consensus label
  bool predictions = true;  // stored predictions for every unlabeled item…
  std::vector<int64_t> without_prediction = {};  // …but these item ids
  size_t rows_per_chunk = 7;                     // small, so that a few items span chunks
  int feature_dim = 4;
  int second_annotator_every = 3;  // every n-th labeled item has a second label
};

struct Seeded {
  int64_t project_id = 0;
  int64_t model_id = 0;
};

class Fixture {
 public:
  explicit Fixture(const std::string& url);
  pg::Pool& pool() { return *pool_; }
  Seeded Seed(const SeedOptions& options);
  // The model JSON Seed stores: softmax over classes a, b, c.
  static nlohmann::json ModelJson(int feature_dim);
  int64_t Count(const std::string& sql);

 private:
  std::unique_ptr<pg::Pool> pool_;
};

}  // namespace labelloop::dl_manager::testing
