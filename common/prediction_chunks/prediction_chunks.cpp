#include "common/prediction_chunks/prediction_chunks.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

namespace labelloop::prediction_chunks {

// The packed layout is little-endian; on such hosts packing is a plain copy.
static_assert(std::endian::native == std::endian::little, "packed predictions are little-endian");

ChunkPacker::ChunkPacker(int classes, size_t max_rows)
    : classes_(classes), max_rows_(max_rows == 0 ? kMaxRowsPerChunk : max_rows) {
  if (classes < 0) throw std::invalid_argument("a model has a non-negative class count");
  if (max_rows_ > kMaxRowsPerChunk) max_rows_ = kMaxRowsPerChunk;
  ids_.reserve(std::min<size_t>(max_rows_, 4096) * sizeof(int64_t));
}

void ChunkPacker::Add(int64_t item_id, const float* probabilities) {
  if (full()) throw std::invalid_argument("the chunk is full: write it and Clear() first");
  if (previous_id_ && item_id <= *previous_id_) {
    throw std::invalid_argument("item " + std::to_string(item_id) + " after item " +
                                std::to_string(*previous_id_) + ": ids must ascend");
  }
  if (rows_ == 0) first_id_ = item_id;
  last_id_ = item_id;
  previous_id_ = item_id;
  ids_.append(reinterpret_cast<const char*>(&item_id), sizeof item_id);
  probs_.append(reinterpret_cast<const char*>(probabilities),
                static_cast<size_t>(classes_) * sizeof(float));
  ++rows_;
}

void ChunkPacker::Clear() {
  rows_ = 0;
  ids_.clear();
  probs_.clear();
}

std::string CheckChunk(int64_t model_id, int64_t chunk, int64_t row_count,
                       std::string_view item_ids, size_t probability_bytes, int classes,
                       std::optional<int64_t> previous_last_id) {
  const std::string where =
      "model " + std::to_string(model_id) + ", prediction chunk " + std::to_string(chunk);
  if (row_count < 0 || static_cast<size_t>(row_count) > kMaxRowsPerChunk) {
    return where + ": row_count " + std::to_string(row_count) + " is not in [0, " +
           std::to_string(kMaxRowsPerChunk) + "]";
  }
  const size_t rows = static_cast<size_t>(row_count);
  if (item_ids.size() != rows * sizeof(int64_t)) {
    return where + ": item_ids has " + std::to_string(item_ids.size()) + " bytes, row_count " +
           std::to_string(rows) + " needs " + std::to_string(rows * sizeof(int64_t));
  }
  const size_t want = rows * static_cast<size_t>(classes) * sizeof(float);
  if (probability_bytes != want) {
    return where + ": probabilities has " + std::to_string(probability_bytes) +
           " bytes, row_count " + std::to_string(rows) + " × " + std::to_string(classes) +
           " classes needs " + std::to_string(want);
  }
  std::optional<int64_t> previous = previous_last_id;
  for (size_t i = 0; i < rows; ++i) {
    const int64_t id = ItemIdAt(item_ids, i);
    if (previous && id <= *previous) {
      return where + ": item id " + std::to_string(id) + " (row " + std::to_string(i) +
             ") does not come after " + std::to_string(*previous) + ": ids must ascend";
    }
    previous = id;
  }
  return "";
}

int64_t ItemIdAt(std::string_view item_ids, size_t i) {
  int64_t v;
  std::memcpy(&v, item_ids.data() + i * sizeof v, sizeof v);
  return v;
}

void UnpackItemIds(std::string_view item_ids, int64_t* out) {
  std::memcpy(out, item_ids.data(), item_ids.size());
}

void UnpackProbabilities(std::string_view probabilities, float* out) {
  std::memcpy(out, probabilities.data(), probabilities.size());
}

}  // namespace labelloop::prediction_chunks
