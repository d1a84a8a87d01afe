#include "services/ranking/select.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <queue>

namespace labelloop::ranking {
namespace {

// Maps float bits to an unsigned integer with the same order (negatives below positives).
inline uint32_t Orderable(float f) {
  f += 0.0f;  // -0 becomes +0, so the two zeros tie
  const uint32_t u = std::bit_cast<uint32_t>(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace

uint64_t OrderKey(float score, uint32_t row) {
  return (static_cast<uint64_t>(~Orderable(score)) << 32) | row;
}

std::vector<uint32_t> SortRows(std::span<const float> scores) {
  const size_t n = scores.size();
  std::vector<uint64_t> keys(n), tmp(n);
  for (size_t i = 0; i < n; ++i) keys[i] = OrderKey(scores[i], static_cast<uint32_t>(i));
  // The low 32 bits (the row) are already in order within equal scores because the input
  // is in row order and LSD radix sort is stable: sort the 32 score bits only, 16 at a time.
  std::vector<uint32_t> count(1u << 16);
  for (int shift = 32; shift < 64; shift += 16) {
    std::fill(count.begin(), count.end(), 0);
    for (size_t i = 0; i < n; ++i) ++count[(keys[i] >> shift) & 0xffff];
    uint32_t sum = 0;
    for (auto& c : count) {
      const uint32_t v = c;
      c = sum;
      sum += v;
    }
    for (size_t i = 0; i < n; ++i) tmp[count[(keys[i] >> shift) & 0xffff]++] = keys[i];
    keys.swap(tmp);
  }
  std::vector<uint32_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = static_cast<uint32_t>(keys[i]);
  return rows;
}

std::vector<uint32_t> TopRows(std::span<const float> scores, size_t k,
                              const std::function<bool(uint32_t)>& keep) {
  std::vector<uint64_t> heap;  // max-heap of keys: the top is the worst kept
  if (k == 0) return {};
  heap.reserve(k);
  uint64_t worst = std::numeric_limits<uint64_t>::max();
  float worst_score = -std::numeric_limits<float>::infinity();
  const size_t n = scores.size();
  for (size_t i = 0; i < n; ++i) {
    // Once the heap is full almost every row scores below its worst: skip 8 rows at a
    // time with one comparison of each (no branch per row).
    if ((i & 7) == 0 && i + 8 <= n && heap.size() == k) {
      const float* s8 = scores.data() + i;
      bool any = false;
      for (int j = 0; j < 8; ++j) any |= !(s8[j] < worst_score);
      if (!any) {
        i += 7;
        continue;
      }
    }
    // The common case: one float comparison rejects the row.
    if (scores[i] < worst_score) continue;
    const uint64_t key = OrderKey(scores[i], static_cast<uint32_t>(i));
    if (heap.size() == k && key >= worst) continue;
    if (keep && !keep(static_cast<uint32_t>(i))) continue;
    if (heap.size() < k) {
      heap.push_back(key);
      std::push_heap(heap.begin(), heap.end());
    } else {
      std::pop_heap(heap.begin(), heap.end());
      heap.back() = key;
      std::push_heap(heap.begin(), heap.end());
    }
    if (heap.size() == k) {
      worst = heap.front();
      worst_score = scores[static_cast<uint32_t>(worst)];
    }
  }
  std::sort(heap.begin(), heap.end());
  std::vector<uint32_t> rows(heap.size());
  for (size_t i = 0; i < heap.size(); ++i) rows[i] = static_cast<uint32_t>(heap[i]);
  return rows;
}

std::vector<size_t> TopK(std::span<const int64_t> ids, std::span<const float> scores, size_t k) {
  auto better = [&](size_t a, size_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    return ids[a] < ids[b];
  };
  std::vector<size_t> idx(ids.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  k = std::min(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), better);
  idx.resize(k);
  return idx;
}

std::vector<size_t> KCenterGreedy(std::span<const float> features, size_t dim, size_t n) {
  const size_t m = dim == 0 ? 0 : features.size() / dim;
  std::vector<size_t> picked;
  if (m == 0 || n == 0) return picked;
  n = std::min(n, m);
  std::vector<double> min_dist(m, std::numeric_limits<double>::infinity());
  std::vector<char> taken(m, 0);
  size_t next = 0;  // the best candidate first
  for (;;) {
    picked.push_back(next);
    taken[next] = 1;
    if (picked.size() == n) break;
    const float* c = features.data() + next * dim;
    size_t best = m;
    double best_dist = -1;
    for (size_t i = 0; i < m; ++i) {
      if (taken[i]) continue;
      const float* f = features.data() + i * dim;
      double d = 0;
      for (size_t j = 0; j < dim; ++j) {
        const double diff = static_cast<double>(f[j]) - c[j];
        d += diff * diff;
      }
      min_dist[i] = std::min(min_dist[i], d);
      if (min_dist[i] > best_dist) {  // strict: ties keep the earlier (better) candidate
        best_dist = min_dist[i];
        best = i;
      }
    }
    next = best;
  }
  return picked;
}

double MinPairwiseDistance(std::span<const float> features, size_t dim,
                           std::span<const size_t> rows) {
  double best = std::numeric_limits<double>::infinity();
  for (size_t a = 0; a < rows.size(); ++a) {
    for (size_t b = a + 1; b < rows.size(); ++b) {
      double d = 0;
      for (size_t j = 0; j < dim; ++j) {
        const double diff =
            static_cast<double>(features[rows[a] * dim + j]) - features[rows[b] * dim + j];
        d += diff * diff;
      }
      best = std::min(best, std::sqrt(d));
    }
  }
  return best;
}

}  // namespace labelloop::ranking
