// A test database with labeling's and training's schemas (from their migration folders)
// and helpers that insert fixture rows directly, as those services would.
#pragma once

#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"
#include "common/prediction_chunks/prediction_chunks.hpp"
#include "common/testing/testing.hpp"

namespace labelloop::ranking_e2e {

class World {
 public:
  explicit World(const std::string& admin_url);
  const std::string& url() const { return db_.url(); }

  int64_t CreateProject(const std::string& label_kind, const std::vector<std::string>& classes,
                        const std::string& settings_json = "{}");
  // Items with the given feature vectors; returns their ids in order.
  std::vector<int64_t> AddItems(int64_t project_id,
                                const std::vector<std::vector<float>>& features);
  int64_t AddModel(int64_t project_id, int version, bool multi_label,
                   const std::vector<std::string>& classes, bool ready = true);
  void SetReady(int64_t model_id);
  // Packed chunks of rows_per_chunk rows, as training writes them; items must ascend.
  void AddPredictions(int64_t model_id, const std::vector<int64_t>& items,
                      const std::vector<std::vector<float>>& probabilities,
                      size_t rows_per_chunk = prediction_chunks::kMaxRowsPerChunk);
  void MarkLabeled(int64_t item_id);
  void Exec(const std::string& sql);

 private:
  int ClassCount(int64_t model_id);

  testing::TempDatabase db_;
  std::unique_ptr<pqxx::connection> conn_;
};

std::string ArrayLiteral(const std::vector<float>& v);
std::string ArrayLiteral(const std::vector<std::string>& v);

}  // namespace labelloop::ranking_e2e
