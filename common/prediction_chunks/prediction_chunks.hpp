// The packed form of a model's predictions (training.prediction_chunks, the contract
// between training, which writes it, and ranking and dl_manager, which read it): rows in
// ascending item id, at most kMaxRowsPerChunk per chunk; item_ids holds row_count
// little-endian int64, probabilities row_count × classes little-endian float32, row-major
// in the model's class order. Plain C++ without a database, shared by the three services.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace labelloop::prediction_chunks {

inline constexpr size_t kMaxRowsPerChunk = 65536;

// Packs rows into one chunk at a time: Add until full(), write the chunk, Clear.
class ChunkPacker {
 public:
  explicit ChunkPacker(int classes, size_t max_rows = kMaxRowsPerChunk);

  // Appends a row of `classes` probabilities. Ids must ascend across the whole model
  // (also across Clear); throws std::invalid_argument otherwise.
  void Add(int64_t item_id, const float* probabilities);
  bool full() const { return rows_ == max_rows_; }
  bool empty() const { return rows_ == 0; }
  size_t rows() const { return rows_; }
  int64_t first_item_id() const { return first_id_; }
  int64_t last_item_id() const { return last_id_; }
  std::string_view item_ids() const { return ids_; }
  std::string_view probabilities() const { return probs_; }
  // Starts the next chunk.
  void Clear();

 private:
  int classes_;
  size_t max_rows_;
  size_t rows_ = 0;
  int64_t first_id_ = 0;
  int64_t last_id_ = 0;
  std::optional<int64_t> previous_id_;
  std::string ids_;
  std::string probs_;
};

// What a reader checks before using a stored chunk: the byte lengths match row_count and
// the class count, and the ids ascend, also after `previous_last_id` (the last id of the
// chunk before). Returns "" when the chunk is usable, else a message naming the model, the
// chunk and what is wrong. (The probabilities' length alone, so that a reader that only
// needs the ids can check a chunk without fetching its probabilities.)
std::string CheckChunk(int64_t model_id, int64_t chunk, int64_t row_count,
                       std::string_view item_ids, size_t probability_bytes, int classes,
                       std::optional<int64_t> previous_last_id);

// The i-th item id / the values of a checked chunk (memcpy: the bytes may be unaligned).
int64_t ItemIdAt(std::string_view item_ids, size_t i);
void UnpackItemIds(std::string_view item_ids, int64_t* out);
void UnpackProbabilities(std::string_view probabilities, float* out);

}  // namespace labelloop::prediction_chunks
