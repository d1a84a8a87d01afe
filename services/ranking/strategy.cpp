#include "services/ranking/strategy.hpp"

namespace labelloop::ranking {

std::optional<Strategy> ParseStrategy(std::string_view name) {
  if (name == "least_confidence") return Strategy::kLeastConfidence;
  if (name == "margin") return Strategy::kMargin;
  if (name == "entropy") return Strategy::kEntropy;
  if (name == "random") return Strategy::kRandom;
  if (name == "batch_diverse") return Strategy::kBatchDiverse;
  return std::nullopt;
}

const char* StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kLeastConfidence:
      return "least_confidence";
    case Strategy::kMargin:
      return "margin";
    case Strategy::kEntropy:
      return "entropy";
    case Strategy::kRandom:
      return "random";
    case Strategy::kBatchDiverse:
      return "batch_diverse";
  }
  return "entropy";
}

std::optional<Aggregate> ParseAggregate(std::string_view name) {
  if (name == "mean") return Aggregate::kMean;
  if (name == "max") return Aggregate::kMax;
  return std::nullopt;
}

const char* AggregateName(Aggregate a) { return a == Aggregate::kMax ? "max" : "mean"; }

}  // namespace labelloop::ranking
