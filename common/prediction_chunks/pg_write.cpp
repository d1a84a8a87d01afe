#include "common/prediction_chunks/pg_write.hpp"

namespace labelloop::prediction_chunks {

void InsertChunk(pqxx::transaction_base& tx, int64_t model_id, int32_t chunk,
                 const ChunkPacker& packer) {
  const auto ids = packer.item_ids();
  const auto probs = packer.probabilities();
  tx.exec_params(
      "INSERT INTO training.prediction_chunks (model_id, chunk, first_item_id, last_item_id, "
      "row_count, item_ids, probabilities) VALUES ($1, $2, $3, $4, $5, $6, $7)",
      model_id, chunk, packer.first_item_id(), packer.last_item_id(),
      static_cast<int32_t>(packer.rows()), pqxx::binarystring(ids.data(), ids.size()),
      pqxx::binarystring(probs.data(), probs.size()));
}

}  // namespace labelloop::prediction_chunks
