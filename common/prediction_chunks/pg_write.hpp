// Writes one packed chunk into training.prediction_chunks: the single INSERT behind
// training's PredictionSink and the test fixtures that seed predictions the same way.
#pragma once

#include <cstdint>
#include <pqxx/pqxx>

#include "common/prediction_chunks/prediction_chunks.hpp"

namespace labelloop::prediction_chunks {

// One parameterized INSERT with the bytes as binary parameters (no escaping; as fast as a
// binary COPY for a handful of multi-megabyte rows). Does not Clear the packer.
void InsertChunk(pqxx::transaction_base& tx, int64_t model_id, int32_t chunk,
                 const ChunkPacker& packer);

}  // namespace labelloop::prediction_chunks
