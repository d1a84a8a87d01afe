// A model's stored predictions (training.v_prediction_chunks, packed as described in
// common/prediction_chunks) read chunk by chunk in ascending item id, inside the caller's
// transaction so they describe the same moment as the export's other reads. One chunk
// (at most 65,536 rows) is held at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <pqxx/pqxx>
#include <span>
#include <string>
#include <vector>

namespace labelloop::dl_manager {

class PredictionChunkReader {
 public:
  // classes: the model's class count. Without probabilities only the ids are fetched
  // (Next then yields empty spans). before_query runs before each query on tx (e.g. to
  // let a CursorSession collect its FETCH in flight).
  PredictionChunkReader(pqxx::transaction_base& tx, int64_t model_id, int classes,
                        bool with_probabilities = true, std::function<void()> before_query = {});

  // The next stored row in ascending item id; false after the last. Throws ExportInvalid
  // naming the chunk when a chunk is corrupt (lengths that do not match row_count × classes,
  // ids that do not ascend).
  bool Next(int64_t& item_id, std::span<const float>& probabilities);
  // A merge for ascending item ids: the stored row of item_id, skipping rows of smaller ids
  // (items labeled since). False when the model has no prediction for it. Each call must
  // ask for a larger id than the one before.
  bool Find(int64_t item_id, std::span<const float>& probabilities);

 private:
  bool LoadChunk();

  pqxx::transaction_base& tx_;
  int64_t model_id_;
  int classes_;
  bool with_probabilities_;
  std::function<void()> before_query_;
  std::optional<int64_t> last_chunk_;
  std::optional<int64_t> last_id_;  // the last id of the chunks read so far
  bool done_ = false;
  std::vector<int64_t> ids_;
  std::vector<float> probabilities_;
  size_t next_ = 0;  // the next row of the current chunk
  // Find keeps the row it read past.
  bool has_pending_ = false;
  int64_t pending_id_ = 0;
  std::span<const float> pending_;
};

struct PredictionCoverage {
  int64_t unlabeled = 0;  // unlabeled items of the project
  int64_t missing = 0;    // of those, items without a stored prediction of the model
};

// Merges the project's unlabeled item ids (labeling.v_items) with the model's stored
// prediction ids, both ascending.
PredictionCoverage StoredPredictionCoverage(pqxx::transaction_base& tx, int64_t project_id,
                                            int64_t model_id, int classes, int batch_rows);

}  // namespace labelloop::dl_manager
