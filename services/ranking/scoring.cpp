#include "services/ranking/scoring.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

// The kernels are compiled for AVX2 and for the baseline; the loader picks one at start
// (GCC function multi-versioning), so the binary still runs on any x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LL_KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define LL_KERNEL
#endif

// The 8-lane helpers are always inlined, so the ABI note about passing AVX vectors does
// not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace labelloop::ranking {
namespace {

// ln x = e ln 2 + ln m with m in [1, 2); ln m = 2 atanh(t), t = (m - 1)/(m + 1) in [0, 1/3),
// and the odd series to t^15 is exact to float precision. No branch or select, so the
// compiler vectorizes loops over it.
[[gnu::always_inline]] inline float LogInline(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 127);
  const float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f800000u);
  const float t = (m - 1.0f) / (m + 1.0f);
  const float t2 = t * t;
  float s = 2.0f / 15.0f;
  s = s * t2 + 2.0f / 13.0f;
  s = s * t2 + 2.0f / 11.0f;
  s = s * t2 + 2.0f / 9.0f;
  s = s * t2 + 2.0f / 7.0f;
  s = s * t2 + 2.0f / 5.0f;
  s = s * t2 + 2.0f / 3.0f;
  s = s * t2 + 2.0f;
  return e * 0.693147181f + t * s;
}

// p ln p with 0 ln 0 = 0, without a branch (the log of a clamped value times p = 0).
[[gnu::always_inline]] inline float PLogP(float p) { return p * LogInline(std::max(p, 1e-30f)); }

inline uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

constexpr size_t kBlock = 256;  // rows per block of the entropy kernel's scratch buffer

// Pairwise (tree) reductions over a row of K values: independent operations the CPU can
// overlap, instead of one long dependency chain.
template <int K>
[[gnu::always_inline]] inline float MaxTree(const float* r) {
  if constexpr (K == 1) {
    return r[0];
  } else {
    const float a = MaxTree<K / 2>(r);
    const float b = MaxTree<K - K / 2>(r + K / 2);
    return a > b ? a : b;
  }
}

template <int K>
[[gnu::always_inline]] inline float SumTree(const float* r) {
  if constexpr (K == 1) {
    return r[0];
  } else {
    return SumTree<K / 2>(r) + SumTree<K - K / 2>(r + K / 2);
  }
}

struct Top2 {
  float first;
  float second;
};

template <int K>
[[gnu::always_inline]] inline Top2 Top2Tree(const float* r) {
  if constexpr (K == 1) {
    return {r[0], -1.0f};
  } else {
    const Top2 a = Top2Tree<K / 2>(r);
    const Top2 b = Top2Tree<K - K / 2>(r + K / 2);
    const float hi = a.first > b.first ? a.first : b.first;
    const float lo_of_firsts = a.first > b.first ? b.first : a.first;
    const float hi_of_seconds = a.second > b.second ? a.second : b.second;
    return {hi, lo_of_firsts > hi_of_seconds ? lo_of_firsts : hi_of_seconds};
  }
}

// 8 lanes of floats with GCC vector extensions: SSE2 pairs on the baseline clone, one
// AVX register on the AVX2 clone.
using F8 = float __attribute__((vector_size(32)));
using U8 = uint32_t __attribute__((vector_size(32)));
using I8 = int32_t __attribute__((vector_size(32)));

[[gnu::always_inline]] inline F8 PLogP8(F8 p) {
  const F8 tiny = F8{} + 1e-30f;
  const F8 x = p > tiny ? p : tiny;
  const U8 bits = std::bit_cast<U8>(x);
  const I8 ei = std::bit_cast<I8>(bits >> 23) - 127;
  const F8 e = __builtin_convertvector(ei, F8);
  const U8 mbits = (bits & 0x007fffffu) | 0x3f800000u;
  const F8 m = std::bit_cast<F8>(mbits);
  const F8 t = (m - 1.0f) / (m + 1.0f);
  const F8 t2 = t * t;
  F8 s = t2 * (2.0f / 15.0f) + 2.0f / 13.0f;
  s = s * t2 + 2.0f / 11.0f;
  s = s * t2 + 2.0f / 9.0f;
  s = s * t2 + 2.0f / 7.0f;
  s = s * t2 + 2.0f / 5.0f;
  s = s * t2 + 2.0f / 3.0f;
  s = s * t2 + 2.0f;
  return p * (e * 0.693147181f + t * s);
}

// p ln p over n contiguous values.
[[gnu::always_inline]] inline void PLogPSpan(const float* __restrict src, size_t n,
                                             float* __restrict dst) {
  size_t x = 0;
  for (; x + 8 <= n; x += 8) {
    F8 v;
    std::memcpy(&v, src + x, sizeof v);
    const F8 r = PLogP8(v);
    std::memcpy(dst + x, &r, sizeof r);
  }
  for (; x < n; ++x) dst[x] = PLogP(src[x]);
}

// Loads 8 rows of K values as K vectors of 8 lanes (one column each), so the per-row
// reductions below become lane-wise operations over whole vectors.
template <int K>
[[gnu::always_inline]] inline void Columns8(const float* __restrict p, F8 (&cols)[K]) {
  alignas(32) float buf[K][8];
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < K; ++j) buf[j][i] = p[i * K + j];
  }
  for (int j = 0; j < K; ++j) std::memcpy(&cols[j], buf[j], sizeof(F8));
}

[[gnu::always_inline]] inline F8 Max8(F8 a, F8 b) { return a > b ? a : b; }
[[gnu::always_inline]] inline F8 Min8(F8 a, F8 b) { return a < b ? a : b; }

template <int K>
[[gnu::always_inline]] inline void LcRows(const float* __restrict p, size_t rows, int /*k*/,
                                          float* __restrict out) {
  size_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    F8 cols[K];
    Columns8<K>(p + i * K, cols);
    F8 m = cols[0];
    for (int j = 1; j < K; ++j) m = Max8(m, cols[j]);
    const F8 r = 1.0f - m;
    std::memcpy(out + i, &r, sizeof r);
  }
  for (; i < rows; ++i) out[i] = 1.0f - MaxTree<K>(p + i * K);
}

[[gnu::always_inline]] inline void LcRowsDyn(const float* __restrict p, size_t rows, int k,
                                             float* __restrict out) {
  for (size_t i = 0; i < rows; ++i) {
    const float* r = p + i * k;
    float m = r[0];
    for (int j = 1; j < k; ++j) m = r[j] > m ? r[j] : m;
    out[i] = 1.0f - m;
  }
}

template <int K>
[[gnu::always_inline]] inline void MarginRows(const float* __restrict p, size_t rows, int /*k*/,
                                              float* __restrict out) {
  size_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    F8 cols[K];
    Columns8<K>(p + i * K, cols);
    F8 m1 = Max8(cols[0], cols[1]);
    F8 m2 = Min8(cols[0], cols[1]);
    for (int j = 2; j < K; ++j) {
      m2 = Max8(m2, Min8(m1, cols[j]));
      m1 = Max8(m1, cols[j]);
    }
    const F8 r = 1.0f - (m1 - m2);
    std::memcpy(out + i, &r, sizeof r);
  }
  for (; i < rows; ++i) {
    const Top2 t = Top2Tree<K>(p + i * K);
    out[i] = 1.0f - (t.first - t.second);
  }
}

[[gnu::always_inline]] inline void MarginRowsDyn(const float* __restrict p, size_t rows, int k,
                                                 float* __restrict out) {
  for (size_t i = 0; i < rows; ++i) {
    const float* r = p + i * k;
    float m1 = r[0] > r[1] ? r[0] : r[1];
    float m2 = r[0] > r[1] ? r[1] : r[0];
    for (int j = 2; j < k; ++j) {
      const float v = r[j];
      m2 = std::max(m2, std::min(m1, v));
      m1 = std::max(m1, v);
    }
    out[i] = 1.0f - (m1 - m2);
  }
}

template <int K>
[[gnu::always_inline]] inline void EntropyRows(const float* __restrict p, size_t rows, int /*k*/,
                                               float* __restrict out) {
  size_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    F8 cols[K];
    Columns8<K>(p + i * K, cols);
    F8 s = PLogP8(cols[0]);
    for (int j = 1; j < K; ++j) s += PLogP8(cols[j]);
    const F8 r = 0.0f - s;
    std::memcpy(out + i, &r, sizeof r);
  }
  for (; i < rows; ++i) {
    float s = 0.0f;
    for (int j = 0; j < K; ++j) s += PLogP(p[i * K + j]);
    out[i] = 0.0f - s;
  }
}

[[gnu::always_inline]] inline void EntropyRowsDyn(const float* __restrict p, size_t rows, int k,
                                                  float* __restrict out) {
  std::vector<float> buf(kBlock * static_cast<size_t>(k));
  for (size_t start = 0; start < rows; start += kBlock) {
    const size_t n = std::min(kBlock, rows - start);
    PLogPSpan(p + start * k, n * k, buf.data());
    for (size_t i = 0; i < n; ++i) {
      float s = 0.0f;
      for (int j = 0; j < k; ++j) s += buf[i * k + j];
      out[start + i] = 0.0f - s;
    }
  }
}

// Dispatches the common class counts to fully unrolled kernels.
#define LL_DISPATCH(NAME)                                               \
  LL_KERNEL void NAME(const float* p, size_t rows, int k, float* out) { \
    switch (k) {                                                        \
      case 2:                                                           \
        return NAME##Rows<2>(p, rows, k, out);                          \
      case 3:                                                           \
        return NAME##Rows<3>(p, rows, k, out);                          \
      case 4:                                                           \
        return NAME##Rows<4>(p, rows, k, out);                          \
      case 5:                                                           \
        return NAME##Rows<5>(p, rows, k, out);                          \
      case 6:                                                           \
        return NAME##Rows<6>(p, rows, k, out);                          \
      case 8:                                                           \
        return NAME##Rows<8>(p, rows, k, out);                          \
      case 10:                                                          \
        return NAME##Rows<10>(p, rows, k, out);                         \
      case 16:                                                          \
        return NAME##Rows<16>(p, rows, k, out);                         \
      default:                                                          \
        return NAME##RowsDyn(p, rows, k, out);                          \
    }                                                                   \
  }

LL_DISPATCH(Lc)
LL_DISPATCH(Margin)
LL_DISPATCH(Entropy)
#undef LL_DISPATCH

// Per-class binary uncertainty of a multi-label row.
[[gnu::always_inline]] inline float BinaryUncertainty(Strategy s, float p) {
  switch (s) {
    case Strategy::kLeastConfidence:
      return std::min(p, 1.0f - p);
    case Strategy::kMargin:
      return 1.0f - std::fabs(2.0f * p - 1.0f);
    default:
      return -(PLogP(p) + PLogP(1.0f - p));
  }
}

template <Strategy S>
[[gnu::always_inline]] inline F8 BinaryUncertainty8(F8 p) {
  const F8 q = 1.0f - p;
  if constexpr (S == Strategy::kLeastConfidence) {
    return Min8(p, q);
  } else if constexpr (S == Strategy::kMargin) {
    const F8 d = p - q;
    return 1.0f - Max8(d, 0.0f - d);
  } else {
    return 0.0f - (PLogP8(p) + PLogP8(q));
  }
}

// Per-class uncertainties of a block of rows computed flat (8 values at a time), then
// aggregated per row.
template <Strategy S, Aggregate A>
LL_KERNEL void MultiRows(const float* __restrict p, size_t rows, int k, float* __restrict out) {
  std::vector<float> buf(kBlock * static_cast<size_t>(k));
  for (size_t start = 0; start < rows; start += kBlock) {
    const size_t n = std::min(kBlock, rows - start);
    const size_t m = n * static_cast<size_t>(k);
    const float* src = p + start * static_cast<size_t>(k);
    size_t x = 0;
    for (; x + 8 <= m; x += 8) {
      F8 v;
      std::memcpy(&v, src + x, sizeof v);
      const F8 u = BinaryUncertainty8<S>(v);
      std::memcpy(buf.data() + x, &u, sizeof u);
    }
    for (; x < m; ++x) buf[x] = BinaryUncertainty(S, src[x]);
    for (size_t i = 0; i < n; ++i) {
      const float* u = buf.data() + i * static_cast<size_t>(k);
      float acc = 0.0f;
      for (int j = 0; j < k; ++j) acc = A == Aggregate::kMax ? std::max(acc, u[j]) : acc + u[j];
      out[start + i] = A == Aggregate::kMax ? acc : acc / static_cast<float>(k);
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define LL_WIDE_ROW_KERNELS 1
// Hand-written AVX2 kernels for single-label rows of 8 to 16 classes (the common case
// of a real classifier). A row is two overlapping 8-float loads (its first 8 and its last
// 8 values), so there is no scalar transpose; eight rows are then reduced lane-wise at
// once with shuffles. Chosen at run time, so the binary still runs without AVX2.
namespace wide {

#define LL_AVX2 gnu::always_inline, gnu::target("avx2,fma")

// lane r of the result = op over the 8 lanes of v[r].
template <class Op>
[[LL_AVX2]] inline __m256 Reduce8(const __m256 (&v)[8], Op op) {
  const __m256 t0 = op(_mm256_unpacklo_ps(v[0], v[1]), _mm256_unpackhi_ps(v[0], v[1]));
  const __m256 t1 = op(_mm256_unpacklo_ps(v[2], v[3]), _mm256_unpackhi_ps(v[2], v[3]));
  const __m256 t2 = op(_mm256_unpacklo_ps(v[4], v[5]), _mm256_unpackhi_ps(v[4], v[5]));
  const __m256 t3 = op(_mm256_unpacklo_ps(v[6], v[7]), _mm256_unpackhi_ps(v[6], v[7]));
  const __m256 u0 = op(_mm256_shuffle_ps(t0, t1, 0x44), _mm256_shuffle_ps(t0, t1, 0xEE));
  const __m256 u1 = op(_mm256_shuffle_ps(t2, t3, 0x44), _mm256_shuffle_ps(t2, t3, 0xEE));
  return op(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

[[LL_AVX2]] inline __m256 MaxPs(__m256 a, __m256 b) { return _mm256_max_ps(a, b); }
[[LL_AVX2]] inline __m256 AddPs(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }

// Lanes of a row's second load that repeat values of its first (zeroed for a sum).
[[LL_AVX2]] inline __m256 TailMask(int k) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(15 - k)));
}

[[gnu::target("avx2,fma")]] void LeastConfidence(const float* __restrict p, size_t rows, int k,
                                                 float* __restrict out) {
  size_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= rows; i += 8) {
    __m256 m[8];
    for (int r = 0; r < 8; ++r) {
      const float* row = p + (i + r) * static_cast<size_t>(k);
      m[r] = _mm256_max_ps(_mm256_loadu_ps(row), _mm256_loadu_ps(row + k - 8));
    }
    _mm256_storeu_ps(out + i, _mm256_sub_ps(one, Reduce8(m, MaxPs)));
  }
  LcRowsDyn(p + i * static_cast<size_t>(k), rows - i, k, out + i);
}

[[gnu::target("avx2,fma")]] void Entropy(const float* __restrict p, size_t rows, int k,
                                         float* __restrict out) {
  // p ln p of a block of rows, flat (every value once), then per-row sums from L1.
  alignas(32) float buf[kBlock * 16 + 8];
  const __m256 tail = TailMask(k);
  for (size_t start = 0; start < rows; start += kBlock) {
    const size_t n = std::min(kBlock, rows - start);
    const size_t m = n * static_cast<size_t>(k);
    const float* src = p + start * static_cast<size_t>(k);
    size_t x = 0;
    for (; x + 8 <= m; x += 8)
      _mm256_store_ps(buf + x,
                      std::bit_cast<__m256>(PLogP8(std::bit_cast<F8>(_mm256_loadu_ps(src + x)))));
    for (; x < m; ++x) buf[x] = PLogP(src[x]);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 s[8];
      for (int r = 0; r < 8; ++r) {
        const float* row = buf + (i + r) * static_cast<size_t>(k);
        s[r] =
            _mm256_add_ps(_mm256_loadu_ps(row), _mm256_and_ps(_mm256_loadu_ps(row + k - 8), tail));
      }
      _mm256_storeu_ps(out + start + i, _mm256_sub_ps(_mm256_setzero_ps(), Reduce8(s, AddPs)));
    }
    for (; i < n; ++i) {
      float acc = 0.0f;
      for (int j = 0; j < k; ++j) acc += buf[i * static_cast<size_t>(k) + j];
      out[start + i] = 0.0f - acc;
    }
  }
}

#undef LL_AVX2

bool Usable(int k) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2 && k >= 8 && k <= 16;
}

}  // namespace wide
#endif

}  // namespace

float FastLog(float x) { return LogInline(x); }

std::optional<std::string> CheckRow(std::span<const float> p, bool multi_label) {
  if (p.empty()) return "no probabilities";
  if (!multi_label && p.size() < 2) return "a single-label row needs at least 2 classes";
  double sum = 0;
  for (size_t j = 0; j < p.size(); ++j) {
    if (std::isnan(p[j])) return fmt::format("NaN in class {}", j);
    if (!(p[j] >= 0.0f && p[j] <= 1.0f)) {
      return fmt::format("class {} has probability {} outside [0, 1]", j, p[j]);
    }
    sum += p[j];
  }
  if (!multi_label && std::fabs(sum - 1.0) > kSumTolerance) {
    return fmt::format("probabilities sum to {} instead of 1", sum);
  }
  return std::nullopt;
}

LL_KERNEL size_t CheckRows(const float* p, size_t rows, int k, bool multi_label, uint8_t* valid) {
  size_t bad = 0;
  const bool too_few = !multi_label && k < 2;
  for (size_t i = 0; i < rows; ++i) {
    const float* r = p + i * static_cast<size_t>(k);
    float sum = 0.0f;
    bool in_range = true;
    for (int j = 0; j < k; ++j) {
      // NaN fails both comparisons.
      in_range &= (r[j] >= 0.0f) & (r[j] <= 1.0f);
      sum += r[j];
    }
    const bool ok =
        in_range && !too_few && k > 0 && (multi_label || std::fabs(sum - 1.0f) <= kSumTolerance);
    valid[i] = ok ? 1 : 0;
    bad += ok ? 0 : 1;
  }
  return bad;
}

double ScoreRow(std::span<const float> p, Strategy s, bool multi_label, Aggregate agg,
                uint64_t seed, int64_t item_id) {
  if (s == Strategy::kRandom) return RandomScore(seed, item_id);
  if (s == Strategy::kBatchDiverse) s = Strategy::kEntropy;
  auto xlogx = [](double x) { return x > 0 ? x * std::log(x) : 0.0; };
  if (multi_label) {
    double acc = 0;
    for (float f : p) {
      const double q = f;
      double u = 0;
      if (s == Strategy::kLeastConfidence) u = std::min(q, 1 - q);
      if (s == Strategy::kMargin) u = 1 - std::fabs(2 * q - 1);
      if (s == Strategy::kEntropy) u = -(xlogx(q) + xlogx(1 - q));
      acc = agg == Aggregate::kMax ? std::max(acc, u) : acc + u;
    }
    return agg == Aggregate::kMax ? acc : acc / static_cast<double>(p.size());
  }
  std::vector<double> sorted(p.begin(), p.end());
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  if (s == Strategy::kLeastConfidence) return 1 - sorted[0];
  if (s == Strategy::kMargin) return 1 - (sorted[0] - sorted[1]);
  double h = 0;
  for (double q : sorted) h -= xlogx(q);
  return h;
}

float RandomScore(uint64_t seed, int64_t item_id) {
  const uint64_t h = SplitMix64(seed ^ SplitMix64(static_cast<uint64_t>(item_id)));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // 24 bits: exact in a float
}

uint64_t RandomSeed(uint64_t base, int64_t project_id, int64_t model_id) {
  return SplitMix64(base ^ SplitMix64(static_cast<uint64_t>(project_id) ^
                                      SplitMix64(static_cast<uint64_t>(model_id))));
}

void ScoreLeastConfidence(const float* p, size_t rows, int k, float* out) {
#ifdef LL_WIDE_ROW_KERNELS
  if (wide::Usable(k)) return wide::LeastConfidence(p, rows, k, out);
#endif
  Lc(p, rows, k, out);
}
void ScoreMargin(const float* p, size_t rows, int k, float* out) { Margin(p, rows, k, out); }
void ScoreEntropy(const float* p, size_t rows, int k, float* out) {
#ifdef LL_WIDE_ROW_KERNELS
  if (wide::Usable(k)) return wide::Entropy(p, rows, k, out);
#endif
  Entropy(p, rows, k, out);
}

void ScoreMultiLabel(Strategy s, Aggregate agg, const float* p, size_t rows, int k, float* out) {
  const bool max = agg == Aggregate::kMax;
  switch (s) {
    case Strategy::kLeastConfidence:
      return max ? MultiRows<Strategy::kLeastConfidence, Aggregate::kMax>(p, rows, k, out)
                 : MultiRows<Strategy::kLeastConfidence, Aggregate::kMean>(p, rows, k, out);
    case Strategy::kMargin:
      return max ? MultiRows<Strategy::kMargin, Aggregate::kMax>(p, rows, k, out)
                 : MultiRows<Strategy::kMargin, Aggregate::kMean>(p, rows, k, out);
    default:
      return max ? MultiRows<Strategy::kEntropy, Aggregate::kMax>(p, rows, k, out)
                 : MultiRows<Strategy::kEntropy, Aggregate::kMean>(p, rows, k, out);
  }
}

void ScoreRandom(uint64_t seed, const int64_t* ids, size_t rows, float* out) {
  for (size_t i = 0; i < rows; ++i) out[i] = RandomScore(seed, ids[i]);
}

void ScoreMatrix(Strategy s, bool multi_label, Aggregate agg, uint64_t seed, const float* p,
                 const int64_t* ids, size_t rows, int k, float* out) {
  if (s == Strategy::kRandom) return ScoreRandom(seed, ids, rows, out);
  if (s == Strategy::kBatchDiverse) s = Strategy::kEntropy;
  if (multi_label) return ScoreMultiLabel(s, agg, p, rows, k, out);
  if (s == Strategy::kLeastConfidence) return ScoreLeastConfidence(p, rows, k, out);
  if (s == Strategy::kMargin) return ScoreMargin(p, rows, k, out);
  return ScoreEntropy(p, rows, k, out);
}

}  // namespace labelloop::ranking
