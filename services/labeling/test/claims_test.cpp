#include "services/labeling/domain/claims.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace labelloop::labeling {
namespace {

TEST(Claims, ClaimSize) {
  EXPECT_EQ(CheckClaimSize(0).n, 1);
  EXPECT_EQ(CheckClaimSize(7).n, 7);
  EXPECT_EQ(CheckClaimSize(101).error, "n: must be between 1 and 100 (got 101)");
  EXPECT_EQ(CheckClaimSize(-1).error, "n: must be between 1 and 100 (got -1)");
}

TEST(Claims, RankedCandidatesDeduplicateExcludeAndCap) {
  EXPECT_EQ(RankedCandidates({5, 3, 5, -1, 0, 9, 3, 7}, {9}, 10), (std::vector<int64_t>{5, 3, 7}));
  EXPECT_EQ(RankedCandidates({1, 2, 3, 4}, {}, 2), (std::vector<int64_t>{1, 2}));
  EXPECT_GT(RankingRequestSize(1), 1);
  EXPECT_LE(RankingRequestSize(100), 500);
}

TEST(Claims, RequestFields) {
  EXPECT_EQ(CheckAnnotator(""), "annotator: must not be empty");
  EXPECT_EQ(CheckAnnotator("ann"), "");
  EXPECT_EQ(CheckAnnotator("a\nb"), "annotator: must not contain control characters");
  EXPECT_EQ(CheckLeaseToken("6f1c2a7e-1b2c-4d5e-8f90-0123456789ab"), "");
  EXPECT_EQ(CheckLeaseToken(""), "lease_token: must not be empty");
  EXPECT_EQ(CheckLeaseToken("6f1c2a7e"),
            "lease_token: not a lease token (a uuid returned by ClaimNext)");
  EXPECT_EQ(CheckSecondsSpent(12.5), "");
  EXPECT_EQ(CheckSecondsSpent(-1), "seconds_spent: must be between 0 and 86400");
  EXPECT_EQ(CheckSecondsSpent(std::numeric_limits<double>::quiet_NaN()),
            "seconds_spent: must be between 0 and 86400");
  EXPECT_EQ(CheckId("item_id", 0), "item_id: must be a positive id (got 0)");
  EXPECT_EQ(CheckSkipReason(std::string(1001, 'x')), "reason: at most 1000 characters");
}

}  // namespace
}  // namespace labelloop::labeling
