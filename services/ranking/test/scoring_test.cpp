// Scores against hand-computed values, the bulk kernels against the reference scorer,
// and the rejection of unusable probability rows.
#include "services/ranking/scoring.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace labelloop::ranking {
namespace {

constexpr double kTol = 1e-5;

float Bulk(Strategy s, const std::vector<float>& p, bool multi = false,
           Aggregate agg = Aggregate::kMean) {
  float out = -1;
  const int64_t id = 1;
  ScoreMatrix(s, multi, agg, 0, p.data(), &id, 1, static_cast<int>(p.size()), &out);
  return out;
}

TEST(Scoring, LeastConfidenceIsOneMinusMax) {
  EXPECT_NEAR(Bulk(Strategy::kLeastConfidence, {0.7f, 0.2f, 0.1f}), 0.3, kTol);
  EXPECT_NEAR(Bulk(Strategy::kLeastConfidence, {0.25f, 0.25f, 0.25f, 0.25f}), 0.75, kTol);
  EXPECT_NEAR(Bulk(Strategy::kLeastConfidence, {0.0f, 1.0f}), 0.0, kTol);
}

TEST(Scoring, MarginIsOneMinusTopTwoGap) {
  EXPECT_NEAR(Bulk(Strategy::kMargin, {0.7f, 0.2f, 0.1f}), 0.5, kTol);
  EXPECT_NEAR(Bulk(Strategy::kMargin, {0.1f, 0.45f, 0.45f}), 1.0, kTol);
  EXPECT_NEAR(Bulk(Strategy::kMargin, {0.6f, 0.4f}), 0.8, kTol);
  EXPECT_NEAR(Bulk(Strategy::kMargin, {1.0f, 0.0f}), 0.0, kTol);
}

TEST(Scoring, EntropyIsNaturalLogShannon) {
  // -(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1) = 0.2496725 + 0.3218876 + 0.2302585
  EXPECT_NEAR(Bulk(Strategy::kEntropy, {0.7f, 0.2f, 0.1f}), 0.8018186, kTol);
  EXPECT_NEAR(Bulk(Strategy::kEntropy, {0.25f, 0.25f, 0.25f, 0.25f}), std::log(4.0), kTol);
  EXPECT_NEAR(Bulk(Strategy::kEntropy, {1.0f, 0.0f, 0.0f}), 0.0, kTol);  // 0 ln 0 = 0
}

TEST(Scoring, MultiLabelAggregatesPerClassBinaryUncertainty) {
  const std::vector<float> p = {0.9f, 0.5f, 0.2f};
  // least confidence min(p, 1-p) = 0.1, 0.5, 0.2
  EXPECT_NEAR(Bulk(Strategy::kLeastConfidence, p, true, Aggregate::kMean), 0.8 / 3, kTol);
  EXPECT_NEAR(Bulk(Strategy::kLeastConfidence, p, true, Aggregate::kMax), 0.5, kTol);
  // margin 1 - |2p - 1| = 0.2, 1.0, 0.4
  EXPECT_NEAR(Bulk(Strategy::kMargin, p, true, Aggregate::kMean), 1.6 / 3, kTol);
  EXPECT_NEAR(Bulk(Strategy::kMargin, p, true, Aggregate::kMax), 1.0, kTol);
  // binary entropy 0.3250830, 0.6931472, 0.5004024
  EXPECT_NEAR(Bulk(Strategy::kEntropy, p, true, Aggregate::kMean), 1.5186326 / 3, kTol);
  EXPECT_NEAR(Bulk(Strategy::kEntropy, p, true, Aggregate::kMax), 0.6931472, kTol);
}

TEST(Scoring, RandomIsSeededAndDeterministic) {
  EXPECT_EQ(RandomScore(7, 42), RandomScore(7, 42));
  EXPECT_NE(RandomScore(7, 42), RandomScore(8, 42));
  EXPECT_NE(RandomScore(7, 42), RandomScore(7, 43));
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const float r = RandomScore(1, i);
    ASSERT_GE(r, 0.0f);
    ASSERT_LT(r, 1.0f);
    sum += r;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
  EXPECT_EQ(RandomSeed(0, 1, 2), RandomSeed(0, 1, 2));
  EXPECT_NE(RandomSeed(0, 1, 2), RandomSeed(0, 1, 3));
}

TEST(Scoring, FastLogMatchesStdLog) {
  for (float x : {1e-30f, 1e-7f, 0.001f, 0.1f, 0.5f, 0.7071f, 0.99f, 1.0f, 1.5f, 123.0f}) {
    EXPECT_NEAR(FastLog(x), std::log(static_cast<double>(x)),
                2e-6 * std::max(1.0, std::fabs(std::log(static_cast<double>(x)))))
        << x;
  }
}

TEST(Scoring, BulkKernelsMatchReferenceForEveryClassCount) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int k = 1; k <= 17; ++k) {
    for (bool multi : {false, true}) {
      if (!multi && k < 2) continue;
      const size_t rows = 300;
      std::vector<float> p(rows * k);
      for (size_t r = 0; r < rows; ++r) {
        float sum = 0;
        for (int j = 0; j < k; ++j) sum += (p[r * k + j] = u(gen));
        if (!multi) {
          for (int j = 0; j < k; ++j) p[r * k + j] /= sum;
        }
        if (r % 7 == 0) p[r * k] = multi ? 0.0f : p[r * k];  // exact zeros too
      }
      std::vector<int64_t> ids(rows);
      for (size_t r = 0; r < rows; ++r) ids[r] = static_cast<int64_t>(r) * 3 + 1;
      for (int s = 0; s < kBaseStrategies; ++s) {
        for (Aggregate agg : {Aggregate::kMean, Aggregate::kMax}) {
          std::vector<float> out(rows);
          ScoreMatrix(static_cast<Strategy>(s), multi, agg, 99, p.data(), ids.data(), rows, k,
                      out.data());
          for (size_t r = 0; r < rows; ++r) {
            const double want = ScoreRow(std::span<const float>(p.data() + r * k, k),
                                         static_cast<Strategy>(s), multi, agg, 99, ids[r]);
            ASSERT_NEAR(out[r], want, 2e-5)
                << "k=" << k << " multi=" << multi << " strategy=" << s << " row=" << r;
          }
        }
      }
    }
  }
}

TEST(Scoring, RowsThatAreNotProbabilitiesAreRejected) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(CheckRow(std::vector<float>{0.5f, 0.5f}, false));
  EXPECT_FALSE(CheckRow(std::vector<float>{0.5f, 0.5004f}, false));  // within tolerance
  auto why = CheckRow(std::vector<float>{0.5f, nan}, false);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("NaN in class 1"), std::string::npos) << *why;
  why = CheckRow(std::vector<float>{0.5f, 0.2f}, false);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("sum to 0.7"), std::string::npos) << *why;
  EXPECT_TRUE(CheckRow(std::vector<float>{1.2f, -0.2f}, false));
  EXPECT_TRUE(CheckRow(std::vector<float>{inf, 0.0f}, false));
  EXPECT_TRUE(CheckRow(std::vector<float>{1.0f}, false));  // one class is not single-label
  EXPECT_TRUE(CheckRow(std::vector<float>{}, true));
  // Multi-label rows need not sum to 1, but each value must be a probability.
  EXPECT_FALSE(CheckRow(std::vector<float>{0.9f, 0.9f, 0.9f}, true));
  EXPECT_TRUE(CheckRow(std::vector<float>{0.9f, nan}, true));
  EXPECT_TRUE(CheckRow(std::vector<float>{0.9f, 1.1f}, true));

  // The bulk check agrees row by row.
  const std::vector<float> m = {0.5f, 0.5f,  0.5f, nan,  0.5f, 0.2f,
                                1.2f, -0.2f, inf,  0.0f, 0.3f, 0.7f};
  std::vector<uint8_t> valid(6);
  EXPECT_EQ(CheckRows(m.data(), 6, 2, false, valid.data()), 4u);
  EXPECT_EQ(valid, (std::vector<uint8_t>{1, 0, 0, 0, 0, 1}));
}

TEST(Scoring, StrategyNamesRoundTrip) {
  for (int s = 0; s <= static_cast<int>(Strategy::kBatchDiverse); ++s) {
    EXPECT_EQ(ParseStrategy(StrategyName(static_cast<Strategy>(s))), static_cast<Strategy>(s));
  }
  EXPECT_FALSE(ParseStrategy("smallest_margin"));
  EXPECT_EQ(ParseAggregate("max"), Aggregate::kMax);
  EXPECT_FALSE(ParseAggregate("median"));
}

}  // namespace
}  // namespace labelloop::ranking
