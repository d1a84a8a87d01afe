// Top-k, the full order and k-center greedy: ties by item id, and batch-diverse picks
// spread over a clustered data set where the plain top-n is all one cluster.
#include "services/ranking/select.hpp"

#include <gtest/gtest.h>

#include <random>

#include "services/ranking/order.hpp"

namespace labelloop::ranking {
namespace {

TEST(Select, SortRowsHigherScoreFirstTiesByRow) {
  const std::vector<float> s = {0.5f, 0.9f, 0.5f, 0.1f, 0.9f, -0.0f, 0.0f};
  EXPECT_EQ(SortRows(s), (std::vector<uint32_t>{1, 4, 0, 2, 3, 5, 6}));
}

TEST(Select, TopRowsEqualsSortedPrefixAndHonoursKeep) {
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> d(0, 20);  // many ties
  std::vector<float> s(5000);
  for (auto& x : s) x = static_cast<float>(d(gen)) / 20.0f;
  const auto all = SortRows(s);
  for (size_t k : {0u, 1u, 7u, 100u, 5000u, 6000u}) {
    auto top = TopRows(s, k);
    ASSERT_EQ(top.size(), std::min<size_t>(k, s.size()));
    EXPECT_TRUE(std::equal(top.begin(), top.end(), all.begin())) << k;
  }
  auto even = TopRows(s, 50, [](uint32_t r) { return r % 2 == 0; });
  std::vector<uint32_t> want;
  for (uint32_t r : all) {
    if (r % 2 == 0 && want.size() < 50) want.push_back(r);
  }
  EXPECT_EQ(even, want);
}

// Large inputs take the sampled first bar; it must never change the answer: ties at the
// bar, a sample that overestimates it (the best rows are all in one place), and a keep
// that rejects most of the rows that pass it (the scan is then redone without a bar).
TEST(Select, TopRowsOnLargeInputsEqualsSortedPrefix) {
  std::mt19937 gen(11);
  std::uniform_int_distribution<int> coarse(0, 50);  // heavy ties
  std::uniform_real_distribution<float> fine(0.0f, 1.0f);
  const size_t n = 300000;
  std::vector<std::vector<float>> inputs(3, std::vector<float>(n));
  for (size_t i = 0; i < n; ++i) {
    inputs[0][i] = static_cast<float>(coarse(gen)) / 50.0f;
    inputs[1][i] = fine(gen);
    // Low everywhere except a block the strided sample never lands in more than once.
    inputs[2][i] = (i % 1000 == 999) ? 0.9f : fine(gen) * 0.5f;
  }
  for (const auto& s : inputs) {
    const auto all = SortRows(s);
    for (size_t k : {1u, 100u, 1000u, 5000u}) {
      auto top = TopRows(s, k);
      ASSERT_EQ(top.size(), k);
      EXPECT_TRUE(std::equal(top.begin(), top.end(), all.begin())) << k;
    }
    auto rare = TopRows(s, 500, [](uint32_t r) { return r % 97 == 0; });
    std::vector<uint32_t> want;
    for (uint32_t r : all) {
      if (r % 97 == 0 && want.size() < 500) want.push_back(r);
    }
    EXPECT_EQ(rare, want);
  }
}

TEST(Select, TopKBreaksTiesBySmallerItemId) {
  const std::vector<int64_t> ids = {50, 10, 30, 20, 40};
  const std::vector<float> scores = {0.8f, 0.8f, 0.9f, 0.8f, 0.1f};
  EXPECT_EQ(TopK(ids, scores, 4), (std::vector<size_t>{2, 1, 3, 0}));
}

TEST(Select, KCenterGreedyPicksTheFarthestEachTime) {
  // Points on a line: 0, 1, 2, 10, 11, 20 (best candidate first = 0).
  const std::vector<float> f = {0, 1, 2, 10, 11, 20};
  EXPECT_EQ(KCenterGreedy(f, 1, 3), (std::vector<size_t>{0, 5, 3}));
  EXPECT_EQ(KCenterGreedy(f, 1, 10).size(), 6u);
  // Equal distances go to the better (earlier) candidate.
  const std::vector<float> g = {0, -5, 5};
  EXPECT_EQ(KCenterGreedy(g, 1, 2), (std::vector<size_t>{0, 1}));
}

// 10 tight clusters far apart; the most uncertain items all sit in cluster 0.
TEST(Select, BatchDiverseIsFartherApartThanPlainTopN) {
  std::mt19937 gen(11);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  const size_t clusters = 10, per = 50, dim = 4, n = 10;
  std::vector<int64_t> ids;
  std::vector<float> probs;
  std::vector<std::vector<float>> features_of;  // by item id - 1
  for (size_t c = 0; c < clusters; ++c) {
    for (size_t i = 0; i < per; ++i) {
      ids.push_back(static_cast<int64_t>(ids.size()) + 1);
      // Cluster 0 is the most uncertain (p close to 0.5), the others less and less.
      const float p = 0.5f + 0.04f * static_cast<float>(c) + 0.0001f * static_cast<float>(i);
      probs.insert(probs.end(), {p, 1.0f - p});
      std::vector<float> f(dim);
      for (size_t j = 0; j < dim; ++j) f[j] = (j == c % dim ? 10.0f * (c + 1) : 0.0f) + noise(gen);
      features_of.push_back(f);
    }
  }
  ModelInfo model{.project_id = 1, .model_id = 1, .version = 1, .multi_label = false, .classes = 2};
  auto table = BuildTable(model, {ids, probs, 2}, {}, {});
  Order order(table, Strategy::kEntropy, {}, 0);
  auto plain = order.Next(n, Strategy::kEntropy, {});
  auto pool = order.Next(n * 50, Strategy::kBatchDiverse, {});
  std::vector<std::vector<float>> pool_features;
  for (const auto& p : pool) pool_features.push_back(features_of[p.item_id - 1]);
  auto diverse = SelectDiverse(pool, pool_features, n);
  ASSERT_EQ(diverse.size(), n);
  EXPECT_EQ(diverse[0].item_id, plain[0].item_id);  // starts from the most uncertain

  auto spread = [&](const std::vector<Pick>& picks) {
    std::vector<float> m;
    std::vector<size_t> rows;
    for (const auto& p : picks) {
      rows.push_back(rows.size());
      m.insert(m.end(), features_of[p.item_id - 1].begin(), features_of[p.item_id - 1].end());
    }
    return MinPairwiseDistance(m, dim, rows);
  };
  const double plain_spread = spread(plain), diverse_spread = spread(diverse);
  EXPECT_LT(plain_spread, 1.0);    // ten near-copies from one cluster
  EXPECT_GT(diverse_spread, 5.0);  // one per cluster
  EXPECT_GT(diverse_spread, 10 * plain_spread);
  std::set<int64_t> cluster_of;
  for (const auto& p : diverse) cluster_of.insert((p.item_id - 1) / static_cast<int64_t>(per));
  EXPECT_EQ(cluster_of.size(), clusters);
}

TEST(Select, BatchDiverseWithoutFeaturesFallsBackToTheOrder) {
  std::vector<Pick> pool = {{1, 0.9f, 0}, {2, 0.8f, 1}, {3, 0.7f, 2}};
  auto picks = SelectDiverse(pool, {{}, {}, {}}, 2);
  ASSERT_EQ(picks.size(), 2u);
  EXPECT_EQ(picks[0].item_id, 1);
  EXPECT_EQ(picks[1].item_id, 2);
}

}  // namespace
}  // namespace labelloop::ranking
