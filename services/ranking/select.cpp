#include "services/ranking/select.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <queue>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace labelloop::ranking {
namespace {

// Maps float bits to an unsigned integer with the same order (negatives below positives).
inline uint32_t Orderable(float f) {
  f += 0.0f;  // -0 becomes +0, so the two zeros tie
  const uint32_t u = std::bit_cast<uint32_t>(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The first row >= from whose score is not below `bound` (n when there is none). NaN
// scores are "not below" and so stop the scan, like the scalar comparison in TopRows.
size_t NextNotBelow(const float* s, size_t from, size_t n, float bound) {
  size_t i = from;
#if defined(__SSE2__)
  const __m128 b = _mm_set1_ps(bound);
  for (; i + 16 <= n; i += 16) {
    // cmpnlt: "not less than", true for NaN.
    const __m128 m0 = _mm_cmpnlt_ps(_mm_loadu_ps(s + i), b);
    const __m128 m1 = _mm_cmpnlt_ps(_mm_loadu_ps(s + i + 4), b);
    const __m128 m2 = _mm_cmpnlt_ps(_mm_loadu_ps(s + i + 8), b);
    const __m128 m3 = _mm_cmpnlt_ps(_mm_loadu_ps(s + i + 12), b);
    if (_mm_movemask_ps(_mm_or_ps(_mm_or_ps(m0, m1), _mm_or_ps(m2, m3))) != 0) break;
  }
#endif
  for (; i < n; ++i) {
    if (!(s[i] < bound)) return i;
  }
  return n;
}

// A score that about `want` of the rows reach, estimated from 4,096 evenly strided rows;
// -inf when the sample is too small to say (few rows, or want close to all of them).
float SampledBar(std::span<const float> scores, size_t want) {
  constexpr size_t kSample = 4096;
  const size_t n = scores.size();
  const size_t rank = n == 0 ? 0 : want * kSample / n;  // sampled rows meant to be above
  // Too few rows, or too few sampled rows above the bar to trust it: no bar.
  if (n < 16 * kSample || want * 16 > n || rank < 4) {
    return -std::numeric_limits<float>::infinity();
  }
  std::vector<float> sample(kSample);
  const size_t stride = n / kSample;
  for (size_t j = 0; j < kSample; ++j) sample[j] = scores[j * stride];
  // NaN would make the order meaningless: no bar then.
  for (float v : sample) {
    if (std::isnan(v)) return -std::numeric_limits<float>::infinity();
  }
  std::nth_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(rank), sample.end(),
                   std::greater<>());
  return sample[rank];
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

namespace {

// TopRows with or without the sampled first bar.
std::vector<uint32_t> TopRowsImpl(std::span<const float> scores, size_t k,
                                  const std::function<bool(uint32_t)>& keep, bool sample) {
  if (k == 0) return {};
  // Candidates (order keys: smaller = better) collect in a buffer; when it holds 4k, the
  // best k are kept (nth_element, linear) and the k-th becomes the bar a row must reach.
  // Amortized O(1) per candidate, where a heap paid O(log k) with unpredictable branches
  // for each of the ~k ln(n/k) rows that improve on the bar.
  std::vector<uint64_t> cand;
  cand.reserve(4 * k);
  uint64_t worst = std::numeric_limits<uint64_t>::max();
  float worst_score = -std::numeric_limits<float>::infinity();
  const auto prune = [&] {
    std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(k - 1), cand.end());
    cand.resize(k);
    worst = cand[k - 1];
    worst_score = scores[static_cast<uint32_t>(worst)];
  };
  const size_t n = scores.size();
  // A first bar from an evenly strided sample, set so that about 2k rows pass it: the
  // scan then skips almost everything from the start. If fewer than k kept rows pass
  // (a skewed sample, or keep rejects many), the scan is redone from the lowest bar.
  const float sampled_bar =
      sample ? SampledBar(scores, 2 * k) : -std::numeric_limits<float>::infinity();
  if (sampled_bar > worst_score) {
    worst_score = sampled_bar;
    worst = OrderKey(sampled_bar, std::numeric_limits<uint32_t>::max());
  }
  for (size_t i = 0; i < n; ++i) {
    // Almost every row scores below the bar: skip to the next one that does not.
    i = NextNotBelow(scores.data(), i, n, worst_score);
    if (i == n) break;
    const uint64_t key = OrderKey(scores[i], static_cast<uint32_t>(i));
    if (key >= worst) continue;
    if (keep && !keep(static_cast<uint32_t>(i))) continue;
    cand.push_back(key);
    if (cand.size() == 4 * k) prune();
  }
  if (cand.size() < k && sampled_bar > -std::numeric_limits<float>::infinity()) {
    return TopRowsImpl(scores, k, keep, false);
  }
  if (cand.size() > k) {
    std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(k - 1), cand.end());
    cand.resize(k);
  }
  std::sort(cand.begin(), cand.end());
  std::vector<uint32_t> rows(cand.size());
  for (size_t i = 0; i < cand.size(); ++i) rows[i] = static_cast<uint32_t>(cand[i]);
  return rows;
}

}  // namespace

std::vector<uint32_t> TopRows(std::span<const float> scores, size_t k,
                              const std::function<bool(uint32_t)>& keep) {
  return TopRowsImpl(scores, k, keep, true);
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
