#include "services/ranking/order.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

#include "services/ranking/scoring.hpp"
#include "services/ranking/select.hpp"

namespace labelloop::ranking {

ScoreTable::ScoreTable(ModelInfo model, Aggregate aggregate, std::vector<int64_t> ids,
                       std::array<std::vector<float>, kBaseStrategies> scores, int64_t rejected)
    : model_(model),
      aggregate_(aggregate),
      ids_(std::move(ids)),
      scores_(std::move(scores)),
      rejected_(rejected),
      dropped_(new std::atomic<uint8_t>[ids_.size()]),
      live_(static_cast<int64_t>(ids_.size())) {
  for (size_t i = 0; i < ids_.size(); ++i) dropped_[i].store(0, std::memory_order_relaxed);
}

std::optional<uint32_t> ScoreTable::RowOf(int64_t item_id) const {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), item_id);
  if (it == ids_.end() || *it != item_id) return std::nullopt;
  return static_cast<uint32_t>(it - ids_.begin());
}

bool ScoreTable::Drop(int64_t item_id) {
  auto row = RowOf(item_id);
  if (!row) return false;
  if (dropped_[*row].exchange(1) != 0) return false;
  live_.fetch_sub(1);
  return true;
}

Order::Order(std::shared_ptr<ScoreTable> table, Strategy strategy,
             std::chrono::system_clock::time_point built_at, double build_seconds)
    : table_(std::move(table)),
      strategy_(strategy),
      built_at_(built_at),
      build_seconds_(build_seconds) {}

const std::vector<uint32_t>& Order::Ranked(Strategy s) const {
  const int b = BaseIndex(s);
  std::call_once(once_[b], [&] { ranked_[b] = SortRows(table_->scores(b)); });
  return ranked_[b];
}

std::vector<Pick> Order::Next(size_t n, Strategy s,
                              const std::unordered_set<int64_t>& exclude) const {
  const auto& ranked = Ranked(s);
  const auto scores = table_->scores(BaseIndex(s));
  const auto ids = table_->ids();
  std::vector<Pick> out;
  out.reserve(std::min(n, ranked.size()));
  for (size_t pos = 0; pos < ranked.size() && out.size() < n; ++pos) {
    const uint32_t row = ranked[pos];
    if (table_->dropped(row)) continue;
    if (!exclude.empty() && exclude.count(ids[row])) continue;
    out.push_back({ids[row], scores[row], static_cast<int64_t>(pos)});
  }
  return out;
}

std::optional<Pick> Order::Find(int64_t item_id, Strategy s) const {
  auto row = table_->RowOf(item_id);
  if (!row || table_->dropped(*row)) return std::nullopt;
  const int b = BaseIndex(s);
  const auto& ranked = Ranked(s);
  std::call_once(pos_once_[b], [&] {
    position_[b].resize(ranked.size());
    for (size_t pos = 0; pos < ranked.size(); ++pos) {
      position_[b][ranked[pos]] = static_cast<uint32_t>(pos);
    }
  });
  return Pick{item_id, table_->scores(b)[*row], position_[b][*row]};
}

namespace {

// Sorts ids (and their rows of k floats) by id, when they are not sorted already.
void SortById(std::vector<int64_t>& ids, std::vector<float>& rows, int k) {
  if (std::is_sorted(ids.begin(), ids.end())) return;
  std::vector<uint32_t> perm(ids.size());
  std::iota(perm.begin(), perm.end(), 0u);
  std::sort(perm.begin(), perm.end(), [&](uint32_t a, uint32_t b) { return ids[a] < ids[b]; });
  std::vector<int64_t> new_ids(ids.size());
  std::vector<float> new_rows(rows.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    new_ids[i] = ids[perm[i]];
    std::copy_n(rows.begin() + static_cast<std::ptrdiff_t>(perm[i]) * k, k,
                new_rows.begin() + static_cast<std::ptrdiff_t>(i) * k);
  }
  ids.swap(new_ids);
  rows.swap(new_rows);
}

// Keeps the rows whose keep flag is set (in place, stable).
void Compact(std::vector<int64_t>& ids, std::vector<float>& rows, int k,
             const std::vector<uint8_t>& keep) {
  size_t w = 0;
  for (size_t r = 0; r < ids.size(); ++r) {
    if (!keep[r]) continue;
    if (w != r) {
      ids[w] = ids[r];
      std::copy_n(rows.begin() + static_cast<std::ptrdiff_t>(r) * k, k,
                  rows.begin() + static_cast<std::ptrdiff_t>(w) * k);
    }
    ++w;
  }
  ids.resize(w);
  rows.resize(w * static_cast<size_t>(k));
}

// Marks the rows whose id is in `labeled` (sorted) as not kept.
void MarkLabeled(const std::vector<int64_t>& ids, std::vector<int64_t> labeled,
                 std::vector<uint8_t>& keep) {
  std::sort(labeled.begin(), labeled.end());
  size_t j = 0;
  for (size_t r = 0; r < ids.size() && j < labeled.size(); ++r) {
    while (j < labeled.size() && labeled[j] < ids[r]) ++j;
    if (j < labeled.size() && labeled[j] == ids[r]) keep[r] = 0;
  }
}

// Runs fn(begin, end) over [0, n) split across `threads` threads.
template <typename Fn>
void Parallel(size_t n, int threads, Fn fn) {
  threads = std::max(1, std::min(threads, static_cast<int>(n / 65536) + 1));
  if (threads == 1) return fn(size_t{0}, n);
  std::vector<std::thread> pool;
  const size_t chunk = (n + threads - 1) / threads;
  for (int t = 1; t < threads; ++t) {
    const size_t b = std::min(n, chunk * t), e = std::min(n, chunk * (t + 1));
    pool.emplace_back([&fn, b, e] { fn(b, e); });
  }
  fn(0, std::min(n, chunk));
  for (auto& th : pool) th.join();
}

}  // namespace

std::shared_ptr<ScoreTable> BuildTable(const ModelInfo& model, PredictionMatrix m,
                                       std::vector<int64_t> labeled, const BuildOptions& options) {
  const int k = m.classes;
  SortById(m.ids, m.probabilities, k);
  const size_t n = m.ids.size();
  std::vector<uint8_t> keep(n, 1);
  size_t bad = 0;
  Parallel(n, options.threads, [&](size_t b, size_t e) {
    CheckRows(m.probabilities.data() + b * k, e - b, k, model.multi_label, keep.data() + b);
  });
  for (size_t r = 0; r < n; ++r) bad += keep[r] ? 0 : 1;
  MarkLabeled(m.ids, std::move(labeled), keep);
  Compact(m.ids, m.probabilities, k, keep);

  const size_t rows = m.ids.size();
  const uint64_t seed = RandomSeed(options.random_seed, model.project_id, model.model_id);
  std::array<std::vector<float>, kBaseStrategies> scores;
  for (auto& s : scores) s.resize(rows);
  Parallel(rows, options.threads, [&](size_t b, size_t e) {
    for (int s = 0; s < kBaseStrategies; ++s) {
      ScoreMatrix(static_cast<Strategy>(s), model.multi_label, options.aggregate, seed,
                  m.probabilities.data() + b * k, m.ids.data() + b, e - b, k, scores[s].data() + b);
    }
  });
  return std::make_shared<ScoreTable>(model, options.aggregate, std::move(m.ids), std::move(scores),
                                      static_cast<int64_t>(bad));
}

std::shared_ptr<ScoreTable> TableFromScores(const ModelInfo& model, Aggregate aggregate,
                                            std::vector<int64_t> ids, std::vector<float> scores4,
                                            int64_t rejected, std::vector<int64_t> labeled) {
  SortById(ids, scores4, kBaseStrategies);
  std::vector<uint8_t> keep(ids.size(), 1);
  MarkLabeled(ids, std::move(labeled), keep);
  Compact(ids, scores4, kBaseStrategies, keep);
  std::array<std::vector<float>, kBaseStrategies> scores;
  for (int s = 0; s < kBaseStrategies; ++s) {
    scores[s].resize(ids.size());
    for (size_t r = 0; r < ids.size(); ++r) scores[s][r] = scores4[r * kBaseStrategies + s];
  }
  return std::make_shared<ScoreTable>(model, aggregate, std::move(ids), std::move(scores),
                                      rejected);
}

std::vector<Pick> SelectDiverse(const std::vector<Pick>& pool,
                                const std::vector<std::vector<float>>& features, size_t n) {
  // Candidates with a feature vector of the most common length take part in k-center
  // greedy; the rest fill up a batch only when too few have features.
  size_t dim = 0;
  for (const auto& f : features) dim = std::max(dim, f.size());
  std::vector<size_t> with;
  std::vector<float> matrix;
  for (size_t i = 0; i < pool.size(); ++i) {
    if (dim > 0 && features[i].size() == dim) {
      with.push_back(i);
      matrix.insert(matrix.end(), features[i].begin(), features[i].end());
    }
  }
  std::vector<Pick> out;
  std::vector<char> used(pool.size(), 0);
  for (size_t idx : KCenterGreedy(matrix, dim, std::min(n, with.size()))) {
    out.push_back(pool[with[idx]]);
    used[with[idx]] = 1;
  }
  for (size_t i = 0; i < pool.size() && out.size() < n; ++i) {
    if (!used[i]) out.push_back(pool[i]);
  }
  return out;
}

Histogram Distribution(const Order& order, Strategy s, int bins) {
  Histogram h;
  const auto& table = order.table();
  const auto scores = table.scores(BaseIndex(s));
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  for (size_t r = 0; r < table.size(); ++r) {
    if (table.dropped(static_cast<uint32_t>(r))) continue;
    lo = std::min(lo, static_cast<double>(scores[r]));
    hi = std::max(hi, static_cast<double>(scores[r]));
    sum += scores[r];
    ++h.items;
  }
  if (h.items == 0) return h;
  h.mean = sum / static_cast<double>(h.items);
  if (hi == lo) bins = 1;  // every score equal: one bin [lo, lo]
  const double width = hi > lo ? (hi - lo) / bins : 0.0;
  h.bins.resize(bins);
  for (int b = 0; b < bins; ++b) {
    h.bins[b].lower = lo + width * b;
    h.bins[b].upper = b + 1 == bins ? hi : lo + width * (b + 1);
  }
  for (size_t r = 0; r < table.size(); ++r) {
    if (table.dropped(static_cast<uint32_t>(r))) continue;
    int b = hi > lo ? static_cast<int>((scores[r] - lo) / width) : 0;
    h.bins[std::clamp(b, 0, bins - 1)].count++;
  }
  return h;
}

}  // namespace labelloop::ranking
