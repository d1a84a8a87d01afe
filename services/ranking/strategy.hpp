// The query strategies and their names (as used in the API, the project settings and
// ranking.project_strategy).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace labelloop::ranking {

enum class Strategy {
  kLeastConfidence = 0,
  kMargin = 1,
  kEntropy = 2,
  kRandom = 3,
  kBatchDiverse = 4
};

// The four strategies that give each item a score of its own; batch_diverse orders by
// entropy and diversifies a batch at selection time.
inline constexpr int kBaseStrategies = 4;

enum class Aggregate { kMean, kMax };

inline constexpr Strategy kDefaultStrategy = Strategy::kEntropy;

std::optional<Strategy> ParseStrategy(std::string_view name);
const char* StrategyName(Strategy s);
std::optional<Aggregate> ParseAggregate(std::string_view name);
const char* AggregateName(Aggregate a);

// Index into the per-strategy score arrays: batch_diverse uses the entropy scores.
inline int BaseIndex(Strategy s) {
  return s == Strategy::kBatchDiverse ? static_cast<int>(Strategy::kEntropy) : static_cast<int>(s);
}

}  // namespace labelloop::ranking
