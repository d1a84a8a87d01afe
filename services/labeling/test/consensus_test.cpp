#include "services/labeling/domain/consensus.hpp"

#include <gtest/gtest.h>

namespace labelloop::labeling {
namespace {

using V = std::vector<std::string>;

TEST(Consensus, SingleChoiceMajority) {
  LabelSchema s{LabelKind::kSingle, {"cat", "dog", "bird"}};
  auto c = MajorityVote(s, {{"dog"}, {"cat"}, {"dog"}});
  EXPECT_EQ(c.classes, V{"dog"});
  EXPECT_FALSE(c.tie);
  auto one = MajorityVote(s, {{"bird"}});
  EXPECT_EQ(one.classes, V{"bird"});
  EXPECT_FALSE(one.tie);
}

// submit_label (migration 0004) stores an item's only label as its consensus: that is
// what the vote gives for every label CheckLabel accepts (canonical: schema order).
TEST(Consensus, OneLabelIsItsOwnConsensus) {
  LabelSchema single{LabelKind::kSingle, {"cat", "dog", "bird"}};
  LabelSchema multi{LabelKind::kMulti, {"cat", "dog", "bird"}};
  for (const V& label : {V{"cat"}, V{"bird"}}) {
    auto c = MajorityVote(single, {label});
    EXPECT_EQ(c.classes, label);
    EXPECT_FALSE(c.tie);
  }
  for (const V& label : {V{"dog"}, V{"cat", "bird"}, V{"cat", "dog", "bird"}}) {
    auto c = MajorityVote(multi, {label});
    EXPECT_EQ(c.classes, label);
    EXPECT_FALSE(c.tie);
  }
}

TEST(Consensus, SingleChoiceTieIsFlaggedAndPicksTheFirstTiedClassOfTheSchema) {
  LabelSchema s{LabelKind::kSingle, {"cat", "dog", "bird"}};
  auto c = MajorityVote(s, {{"bird"}, {"dog"}});
  EXPECT_TRUE(c.tie);
  EXPECT_EQ(c.classes, V{"dog"});
  auto three = MajorityVote(s, {{"bird"}, {"dog"}, {"cat"}, {"bird"}, {"dog"}});
  EXPECT_TRUE(three.tie);
  EXPECT_EQ(three.classes, V{"dog"});
}

TEST(Consensus, MultiChoiceKeepsClassesChosenByMoreThanHalf) {
  LabelSchema s{LabelKind::kMulti, {"a", "b", "c"}};
  auto c = MajorityVote(s, {{"a", "b"}, {"a"}, {"a", "c"}});
  EXPECT_EQ(c.classes, V{"a"});
  EXPECT_FALSE(c.tie);
  auto tie = MajorityVote(s, {{"c", "a"}, {"a"}});
  EXPECT_EQ(tie.classes, V{"a"});
  EXPECT_TRUE(tie.tie);  // c: one of two
  auto single = MajorityVote(s, {{"c", "a"}});
  EXPECT_EQ(single.classes, (V{"a", "c"}));
  EXPECT_FALSE(single.tie);
}

TEST(Consensus, NoLabelsNoConsensus) {
  LabelSchema s{LabelKind::kSingle, {"a"}};
  auto c = MajorityVote(s, {});
  EXPECT_TRUE(c.classes.empty());
  EXPECT_FALSE(c.tie);
}

}  // namespace
}  // namespace labelloop::labeling
