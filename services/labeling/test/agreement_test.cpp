#include "services/labeling/domain/agreement.hpp"

#include <gtest/gtest.h>

namespace labelloop::labeling {
namespace {

// Two annotators, 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
// po = 35/50 = 0.7; pe = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2/0.5 = 0.4.
TEST(Agreement, CohenKappaByHand) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < 20; ++i) pairs.emplace_back("yes", "yes");
  for (int i = 0; i < 5; ++i) pairs.emplace_back("yes", "no");
  for (int i = 0; i < 10; ++i) pairs.emplace_back("no", "yes");
  for (int i = 0; i < 15; ++i) pairs.emplace_back("no", "no");
  EXPECT_NEAR(*CohenKappa(pairs), 0.4, 1e-12);
}

TEST(Agreement, CohenKappaEdges) {
  EXPECT_FALSE(CohenKappa({}).has_value());
  // Both always say "a": chance agreement is 1, kappa defined as 1.
  EXPECT_DOUBLE_EQ(*CohenKappa({{"a", "a"}, {"a", "a"}}), 1.0);
  // Perfect disagreement on two balanced categories: po = 0, pe = 0.5, kappa = -1.
  EXPECT_DOUBLE_EQ(*CohenKappa({{"a", "b"}, {"b", "a"}}), -1.0);
  // Perfect agreement over two categories.
  EXPECT_DOUBLE_EQ(*CohenKappa({{"a", "a"}, {"b", "b"}}), 1.0);
}

// Fleiss (1971) worked example as on Wikipedia: 10 items, 14 raters, 5 categories.
// P-bar = 0.378, Pe = 0.213, kappa = 0.210 (0.20993 unrounded).
TEST(Agreement, FleissKappaByHand) {
  const int table[10][5] = {{0, 0, 0, 0, 14}, {0, 2, 6, 4, 2}, {0, 0, 3, 5, 6}, {0, 3, 9, 2, 0},
                            {2, 2, 8, 1, 1},  {7, 7, 0, 0, 0}, {3, 2, 6, 3, 0}, {2, 5, 3, 2, 2},
                            {6, 5, 2, 1, 0},  {0, 2, 2, 3, 7}};
  std::vector<std::vector<std::string>> items;
  for (const auto& row : table) {
    std::vector<std::string> ratings;
    for (int c = 0; c < 5; ++c) {
      for (int i = 0; i < row[c]; ++i) ratings.push_back("c" + std::to_string(c));
    }
    items.push_back(ratings);
  }
  EXPECT_NEAR(*FleissKappa(items), 0.20993, 1e-4);
}

TEST(Agreement, FleissKappaNeedsEqualCounts) {
  EXPECT_FALSE(FleissKappa({}).has_value());
  EXPECT_FALSE(FleissKappa({{"a", "b"}, {"a"}}).has_value());
  // Three raters, all agree on every item over two categories: kappa 1.
  EXPECT_DOUBLE_EQ(*FleissKappa({{"a", "a", "a"}, {"b", "b", "b"}}), 1.0);
}

TEST(Agreement, PairwiseCohenPerAnnotatorPair) {
  std::vector<std::vector<Rating>> items = {
      {{"ann", "cat"}, {"bob", "cat"}, {"cy", "dog"}},
      {{"ann", "dog"}, {"bob", "dog"}, {"cy", "dog"}},
      {{"bob", "cat"}, {"ann", "dog"}},
  };
  auto pairs = PairwiseCohen(items);
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0].annotator_a, "ann");
  EXPECT_EQ(pairs[0].annotator_b, "bob");
  EXPECT_EQ(pairs[0].items, 3);
  // ann: cat,dog,dog; bob: cat,dog,cat. po = 2/3; pe = (1/3)(2/3) + (2/3)(1/3) = 4/9;
  // kappa = (2/3 - 4/9) / (5/9) = 0.4.
  EXPECT_NEAR(pairs[0].kappa, 0.4, 1e-12);
  EXPECT_EQ(pairs[1].annotator_b, "cy");
  EXPECT_EQ(pairs[1].items, 2);
  EXPECT_EQ(CategoryOf({"a", "b"}), "a|b");
}

}  // namespace
}  // namespace labelloop::labeling
