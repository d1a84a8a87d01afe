// Uncertainty scores of class-probability rows: plain C++, no I/O.
//
// Every score is "higher = more uncertain = handed out sooner":
//   least confidence  1 - max p
//   margin            1 - (p1 - p2)      (p1 >= p2 the two largest; smallest margin first)
//   entropy           -sum p ln p        (natural log; 0 ln 0 = 0)
//   random            a hash of (seed, item id) in [0, 1), identical on every replica
// Multi-label rows: class c is a binary problem (p_c, 1 - p_c) scored with the same
// strategy (min(p, 1-p), 1 - |2p - 1|, binary entropy) and the per-class values are
// aggregated by mean or max.
//
// The bulk kernels work on a row-major matrix (rows x k floats) and do not validate;
// run CheckRows first and keep only the rows it accepts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "services/ranking/strategy.hpp"

namespace labelloop::ranking {

// A single-label row must sum to 1 within this tolerance.
inline constexpr double kSumTolerance = 1e-3;

// Why a row cannot be scored ("NaN in class 3", "sums to 0.7"), or nullopt when it can.
std::optional<std::string> CheckRow(std::span<const float> p, bool multi_label);

// Marks each row valid (1) or not (0) with the rules of CheckRow; returns the bad count.
size_t CheckRows(const float* p, size_t rows, int k, bool multi_label, uint8_t* valid);

// The reference scorer of one row (double precision, straightforward). The bulk kernels
// are tested against it.
double ScoreRow(std::span<const float> p, Strategy s, bool multi_label, Aggregate agg,
                uint64_t seed, int64_t item_id);

// The random strategy's score of an item: splitmix64(seed ^ item) mapped to [0, 1).
float RandomScore(uint64_t seed, int64_t item_id);

// A seed that differs per project and model but is the same on every replica.
uint64_t RandomSeed(uint64_t base, int64_t project_id, int64_t model_id);

// Bulk kernels. out has `rows` entries; ids (for random) has `rows` entries.
void ScoreLeastConfidence(const float* p, size_t rows, int k, float* out);
void ScoreMargin(const float* p, size_t rows, int k, float* out);
void ScoreEntropy(const float* p, size_t rows, int k, float* out);
void ScoreMultiLabel(Strategy s, Aggregate agg, const float* p, size_t rows, int k, float* out);
void ScoreRandom(uint64_t seed, const int64_t* ids, size_t rows, float* out);

// One strategy over a matrix, dispatching to the kernels above (batch_diverse = entropy).
void ScoreMatrix(Strategy s, bool multi_label, Aggregate agg, uint64_t seed, const float* p,
                 const int64_t* ids, size_t rows, int k, float* out);

// ln x for x > 0, accurate to about 1e-7 relative, branch-free so loops vectorize.
float FastLog(float x);

}  // namespace labelloop::ranking
