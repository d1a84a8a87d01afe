// Selecting items by score: top-k, the full order, and the batch-diverse pick. Plain C++.
//
// Order everywhere: higher score first; equal scores by smaller item id first, so every
// replica computes the same order from the same data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace labelloop::ranking {

// A uint64 key whose ascending order is (score descending, row ascending). With rows
// numbered in ascending item id order this is the tie rule above.
uint64_t OrderKey(float score, uint32_t row);

// All rows sorted by OrderKey (LSD radix sort; O(n)).
std::vector<uint32_t> SortRows(std::span<const float> scores);

// The best k rows in order. keep(row) may reject rows (dropped, excluded); nullptr keeps
// all. Equivalent to SortRows(...) filtered and cut at k, in O(n log k).
std::vector<uint32_t> TopRows(std::span<const float> scores, size_t k,
                              const std::function<bool(uint32_t)>& keep = nullptr);

// The same for (item id, score) pairs that are not in item id order: the best k indexes
// into ids/scores.
std::vector<size_t> TopK(std::span<const int64_t> ids, std::span<const float> scores, size_t k);

// k-center greedy: picks n of the candidates (given best first, each with a feature
// vector of `dim` floats, row-major) so that each next pick is the candidate farthest
// (Euclidean) from everything picked so far; the first pick is the best candidate and
// distance ties go to the better candidate. Returns candidate indexes in pick order.
std::vector<size_t> KCenterGreedy(std::span<const float> features, size_t dim, size_t n);

// The smallest pairwise Euclidean distance among the given rows (for tests and benches).
double MinPairwiseDistance(std::span<const float> features, size_t dim,
                           std::span<const size_t> rows);

}  // namespace labelloop::ranking
