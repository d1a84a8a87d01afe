#include "services/dl_manager/storage/prediction_chunks.hpp"

#include <string_view>
#include <utility>

#include "common/prediction_chunks/prediction_chunks.hpp"
#include "services/dl_manager/storage/export.hpp"

namespace labelloop::dl_manager {
namespace {

constexpr const char* kNextChunkSql = R"(
SELECT chunk, row_count, item_ids, probabilities, octet_length(probabilities)
FROM training.v_prediction_chunks
WHERE model_id = $1 AND chunk > $2
ORDER BY chunk LIMIT 1)";

constexpr const char* kNextChunkIdsSql = R"(
SELECT chunk, row_count, item_ids, NULL::bytea, octet_length(probabilities)
FROM training.v_prediction_chunks
WHERE model_id = $1 AND chunk > $2
ORDER BY chunk LIMIT 1)";

}  // namespace

PredictionChunkReader::PredictionChunkReader(pqxx::transaction_base& tx, int64_t model_id,
                                             int classes, bool with_probabilities,
                                             std::function<void()> before_query)
    : tx_(tx),
      model_id_(model_id),
      classes_(classes),
      with_probabilities_(with_probabilities),
      before_query_(std::move(before_query)) {}

bool PredictionChunkReader::LoadChunk() {
  for (;;) {
    if (done_) return false;
    if (before_query_) before_query_();
    auto r = tx_.exec_params(with_probabilities_ ? kNextChunkSql : kNextChunkIdsSql, model_id_,
                             last_chunk_.value_or(-1));
    if (r.empty()) {
      done_ = true;
      return false;
    }
    const auto& row = r[0];
    const int64_t chunk = row[0].as<int64_t>();
    const int64_t row_count = row[1].as<int64_t>();
    const pqxx::binarystring ids_field(row[2]);
    const std::string_view ids(ids_field.get(), ids_field.size());
    const auto probability_bytes = row[4].as<size_t>();
    const std::string error = prediction_chunks::CheckChunk(model_id_, chunk, row_count, ids,
                                                            probability_bytes, classes_, last_id_);
    if (!error.empty()) throw ExportInvalid("stored predictions are corrupt: " + error);
    const auto rows = static_cast<size_t>(row_count);
    ids_.resize(rows);
    prediction_chunks::UnpackItemIds(ids, ids_.data());
    if (with_probabilities_) {
      const pqxx::binarystring probs(row[3]);
      if (probs.size() != probability_bytes) {
        throw ExportInvalid("stored predictions of model " + std::to_string(model_id_) +
                            " changed while being read (chunk " + std::to_string(chunk) + ")");
      }
      probabilities_.resize(rows * static_cast<size_t>(classes_));
      prediction_chunks::UnpackProbabilities(std::string_view(probs.get(), probs.size()),
                                             probabilities_.data());
    }
    last_chunk_ = chunk;
    if (rows > 0) last_id_ = ids_.back();
    next_ = 0;
    if (rows > 0) return true;
  }
}

bool PredictionChunkReader::Next(int64_t& item_id, std::span<const float>& probabilities) {
  if (has_pending_) {
    has_pending_ = false;
    item_id = pending_id_;
    probabilities = pending_;
    return true;
  }
  if (next_ >= ids_.size() && !LoadChunk()) return false;
  item_id = ids_[next_];
  const auto k = static_cast<size_t>(classes_);
  probabilities = with_probabilities_ ? std::span<const float>(probabilities_.data() + next_ * k, k)
                                      : std::span<const float>();
  ++next_;
  return true;
}

bool PredictionChunkReader::Find(int64_t item_id, std::span<const float>& probabilities) {
  int64_t id = 0;
  std::span<const float> p;
  while (Next(id, p)) {
    if (id < item_id) continue;
    if (id == item_id) {
      probabilities = p;
      return true;
    }
    // Past it: keep the row for the next (larger) id asked for.
    has_pending_ = true;
    pending_id_ = id;
    pending_ = p;
    return false;
  }
  return false;
}

PredictionCoverage StoredPredictionCoverage(pqxx::transaction_base& tx, int64_t project_id,
                                            int64_t model_id, int classes, int batch_rows) {
  PredictionCoverage out;
  PredictionChunkReader stored(tx, model_id, classes, /*with_probabilities=*/false);
  tx.exec_params(
      "DECLARE ll_coverage NO SCROLL CURSOR FOR SELECT item_id FROM labeling.v_items "
      "WHERE project_id = $1 AND unlabeled ORDER BY item_id + 0",  // items_claim_idx's order
      project_id);
  const std::string fetch = "FETCH FORWARD " + std::to_string(batch_rows) + " FROM ll_coverage";
  std::span<const float> unused;
  for (;;) {
    auto batch = tx.exec(fetch);
    if (batch.empty()) break;
    for (const auto& row : batch) {
      ++out.unlabeled;
      if (!stored.Find(row[0].as<int64_t>(), unused)) ++out.missing;
    }
  }
  tx.exec("CLOSE ll_coverage");
  return out;
}

}  // namespace labelloop::dl_manager
