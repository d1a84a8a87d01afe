// Orders built from prediction matrices: labeled and bad rows left out, ties by item id,
// drops, exclusions, lazily sorted other strategies, and the atomic swap in Ranker.
#include "services/ranking/order.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <thread>

#include "services/ranking/ranker.hpp"

namespace labelloop::ranking {
namespace {

ModelInfo Model(int64_t model_id = 1, int classes = 3, bool multi = false) {
  return {.project_id = 7,
          .model_id = model_id,
          .version = 1,
          .multi_label = multi,
          .classes = classes};
}

std::vector<int64_t> Ids(const std::vector<Pick>& picks) {
  std::vector<int64_t> out;
  for (const auto& p : picks) out.push_back(p.item_id);
  return out;
}

// Items given out of id order; 40 and 10 tie; 60 has NaN, 70 sums to 0.5, 80 is labeled.
PredictionMatrix Matrix() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  return {{40, 20, 10, 30, 50, 60, 70, 80},
          {0.5f,  0.3f,  0.2f,    // 40: lc 0.5
           0.9f,  0.05f, 0.05f,   // 20: lc 0.1
           0.3f,  0.5f,  0.2f,    // 10: lc 0.5 (ties with 40)
           0.34f, 0.33f, 0.33f,   // 30: lc 0.66
           0.8f,  0.1f,  0.1f,    // 50: lc 0.2
           nan,   0.5f,  0.5f,    // 60: rejected
           0.2f,  0.2f,  0.1f,    // 70: rejected
           0.34f, 0.33f, 0.33f},  // 80: labeled
          3};
}

TEST(Order, LeastConfidenceOrderTiesByItemIdWithoutBadOrLabeledRows) {
  auto table = BuildTable(Model(), Matrix(), {80}, {});
  EXPECT_EQ(table->size(), 5u);
  EXPECT_EQ(table->rejected(), 2);
  Order order(table, Strategy::kLeastConfidence, {}, 0);
  auto picks = order.Next(10, Strategy::kLeastConfidence, {});
  EXPECT_EQ(Ids(picks), (std::vector<int64_t>{30, 10, 40, 50, 20}));
  EXPECT_NEAR(picks[0].score, 0.66, 1e-6);
  EXPECT_EQ(picks[0].rank, 0);
  EXPECT_EQ(picks[2].rank, 2);
}

TEST(Order, OtherStrategiesAreSortedOnDemand) {
  auto table = BuildTable(Model(), Matrix(), {80}, {});
  Order order(table, Strategy::kLeastConfidence, {}, 0);
  // margin: 30 -> 0.99, 10 -> 0.8, 40 -> 0.8, 50 -> 0.3, 20 -> 0.15
  EXPECT_EQ(Ids(order.Next(3, Strategy::kMargin, {})), (std::vector<int64_t>{30, 10, 40}));
  // entropy: 30 highest; 10 and 40 are permutations of each other: equal, tie by id.
  EXPECT_EQ(Ids(order.Next(3, Strategy::kEntropy, {})), (std::vector<int64_t>{30, 10, 40}));
  auto found = order.Find(50, Strategy::kMargin);
  ASSERT_TRUE(found);
  EXPECT_NEAR(found->score, 0.3, 1e-6);
  EXPECT_EQ(found->rank, 3);
  EXPECT_FALSE(order.Find(60, Strategy::kMargin));  // rejected
  EXPECT_FALSE(order.Find(999, Strategy::kMargin));
}

TEST(Order, DroppedAndExcludedItemsAreSkipped) {
  auto table = BuildTable(Model(), Matrix(), {}, {});
  Order order(table, Strategy::kLeastConfidence, {}, 0);
  EXPECT_EQ(Ids(order.Next(2, Strategy::kLeastConfidence, {})), (std::vector<int64_t>{30, 80}));
  EXPECT_TRUE(order.mutable_table().Drop(30));
  EXPECT_FALSE(order.mutable_table().Drop(30));  // already
  EXPECT_FALSE(order.mutable_table().Drop(12345));
  EXPECT_EQ(Ids(order.Next(3, Strategy::kLeastConfidence, {10})),
            (std::vector<int64_t>{80, 40, 50}));
  EXPECT_FALSE(order.Find(30, Strategy::kLeastConfidence));
  EXPECT_EQ(table->live(), 5);
}

TEST(Order, ScoresFromPersistedRowsGiveTheSameOrder) {
  auto built = BuildTable(Model(), Matrix(), {}, {});
  std::vector<int64_t> ids(built->ids().begin(), built->ids().end());
  std::vector<float> rows;
  for (size_t r = 0; r < ids.size(); ++r) {
    for (int b = 0; b < kBaseStrategies; ++b) rows.push_back(built->scores(b)[r]);
  }
  auto restored = TableFromScores(Model(), Aggregate::kMean, ids, rows, built->rejected(), {20});
  Order a(built, Strategy::kMargin, {}, 0), b(restored, Strategy::kMargin, {}, 0);
  auto want = Ids(a.Next(10, Strategy::kMargin, {20}));
  EXPECT_EQ(Ids(b.Next(10, Strategy::kMargin, {})), want);
}

TEST(Order, DistributionCountsLiveItems) {
  auto table = BuildTable(Model(), Matrix(), {}, {});
  Order order(table, Strategy::kLeastConfidence, {}, 0);
  order.mutable_table().Drop(20);  // lc 0.1
  auto h = Distribution(order, Strategy::kLeastConfidence, 4);
  ASSERT_EQ(h.bins.size(), 4u);
  EXPECT_EQ(h.items, 5);
  EXPECT_NEAR(h.bins[0].lower, 0.2, 1e-6);
  EXPECT_NEAR(h.bins[3].upper, 0.66, 1e-6);
  int64_t total = 0;
  for (const auto& b : h.bins) total += b.count;
  EXPECT_EQ(total, 5);
  EXPECT_EQ(h.bins[3].count, 2);  // 0.66, 0.66
}

TEST(Ranker, DropsDuringABuildAreReplayedOntoTheNewOrder) {
  Ranker ranker;
  EXPECT_EQ(ranker.Live(7), nullptr);
  EXPECT_FALSE(ranker.Drop(7, 30));  // no order yet: nothing to do
  auto since = ranker.BeginBuild(7);
  auto first =
      std::make_shared<Order>(BuildTable(Model(1), Matrix(), {}, {}), Strategy::kLeastConfidence,
                              std::chrono::system_clock::now(), 0);
  ranker.Install(7, first, since);
  auto held = ranker.Live(7);

  since = ranker.BeginBuild(7);     // a new model's order is being built...
  EXPECT_TRUE(ranker.Drop(7, 30));  // ...when item 30 is labeled
  auto second =
      std::make_shared<Order>(BuildTable(Model(2), Matrix(), {}, {}), Strategy::kLeastConfidence,
                              std::chrono::system_clock::now(), 0);
  ranker.Install(7, second, since);
  auto live = ranker.Live(7);
  EXPECT_EQ(live->table().model().model_id, 2);
  EXPECT_EQ(Ids(live->Next(1, Strategy::kLeastConfidence, {})), (std::vector<int64_t>{80}));
  // A reader that took the old order keeps a whole, consistent order.
  EXPECT_EQ(held->table().model().model_id, 1);
  EXPECT_EQ(ranker.Projects(), (std::vector<int64_t>{7}));
}

TEST(Ranker, ReadersSeeOldOrNewNeverAMixture) {
  Ranker ranker;
  auto make = [](int64_t model) {
    PredictionMatrix m;
    m.classes = 2;
    for (int64_t i = 1; i <= 2000; ++i) {
      m.ids.push_back(i);
      // Model 1 prefers small ids, model 2 large ones.
      const float p = 0.5f + 0.4f * static_cast<float>(model == 1 ? i : 2001 - i) / 2000.0f;
      m.probabilities.insert(m.probabilities.end(), {p, 1 - p});
    }
    return std::make_shared<Order>(BuildTable(Model(model, 2), std::move(m), {}, {}),
                                   Strategy::kLeastConfidence, std::chrono::system_clock::now(), 0);
  };
  const auto a = make(1), b = make(2);
  ranker.Install(7, a, ranker.BeginBuild(7));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, reads{0};
  std::thread reader([&] {
    while (!stop) {
      ++reads;
      auto o = ranker.Live(7);
      auto picks = o->Next(50, Strategy::kLeastConfidence, {});
      const bool small = o->table().model().model_id == 1;
      for (size_t i = 0; i < picks.size(); ++i) {
        if (picks[i].item_id !=
            (small ? 1 + static_cast<int64_t>(i) : 2000 - static_cast<int64_t>(i))) {
          ++bad;
        }
      }
    }
  });
  for (int i = 0; i < 2000 || reads < 2000; ++i) {
    ranker.Install(7, i % 2 ? a : b, ranker.BeginBuild(7));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace labelloop::ranking
