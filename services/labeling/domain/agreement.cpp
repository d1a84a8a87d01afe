#include "services/labeling/domain/agreement.hpp"

#include <map>
#include <set>

namespace labelloop::labeling {

std::string CategoryOf(const std::vector<std::string>& classes) {
  std::string out;
  for (size_t i = 0; i < classes.size(); ++i) {
    if (i > 0) out += '|';
    out += classes[i];
  }
  return out;
}

std::optional<double> CohenKappa(const std::vector<std::pair<std::string, std::string>>& pairs) {
  if (pairs.empty()) return std::nullopt;
  const double n = static_cast<double>(pairs.size());
  std::map<std::string, double> a_counts;
  std::map<std::string, double> b_counts;
  double agree = 0;
  for (const auto& [a, b] : pairs) {
    a_counts[a] += 1;
    b_counts[b] += 1;
    if (a == b) agree += 1;
  }
  const double po = agree / n;
  double pe = 0;
  for (const auto& [category, count] : a_counts) {
    auto it = b_counts.find(category);
    if (it != b_counts.end()) pe += (count / n) * (it->second / n);
  }
  if (pe >= 1.0) return 1.0;
  return (po - pe) / (1.0 - pe);
}

std::optional<double> FleissKappa(const std::vector<std::vector<std::string>>& items) {
  if (items.empty()) return std::nullopt;
  const size_t raters = items.front().size();
  if (raters < 2) return std::nullopt;
  std::map<std::string, double> category_totals;
  double p_bar = 0;
  for (const auto& ratings : items) {
    if (ratings.size() != raters) return std::nullopt;
    std::map<std::string, double> counts;
    for (const auto& r : ratings) counts[r] += 1;
    double sum_squares = 0;
    for (const auto& [category, c] : counts) {
      sum_squares += c * c;
      category_totals[category] += c;
    }
    const double n = static_cast<double>(raters);
    p_bar += (sum_squares - n) / (n * (n - 1));
  }
  const double items_n = static_cast<double>(items.size());
  p_bar /= items_n;
  double pe = 0;
  for (const auto& [category, total] : category_totals) {
    const double p = total / (items_n * static_cast<double>(raters));
    pe += p * p;
  }
  if (pe >= 1.0) return 1.0;
  return (p_bar - pe) / (1.0 - pe);
}

std::vector<PairKappa> PairwiseCohen(const std::vector<std::vector<Rating>>& items) {
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<std::string, std::string>>>
      by_pair;
  for (const auto& ratings : items) {
    for (size_t i = 0; i < ratings.size(); ++i) {
      for (size_t j = 0; j < ratings.size(); ++j) {
        if (ratings[i].annotator < ratings[j].annotator) {
          by_pair[{ratings[i].annotator, ratings[j].annotator}].emplace_back(ratings[i].category,
                                                                             ratings[j].category);
        }
      }
    }
  }
  std::vector<PairKappa> out;
  for (const auto& [pair, ratings] : by_pair) {
    out.push_back({pair.first, pair.second, static_cast<long>(ratings.size()),
                   CohenKappa(ratings).value_or(0.0)});
  }
  return out;
}

}  // namespace labelloop::labeling
