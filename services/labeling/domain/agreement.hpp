// Inter-annotator agreement: Cohen's kappa for a pair of annotators and Fleiss' kappa
// for items rated by the same number (> 2) of annotators. A rating is a category
// string; multi-choice labels are compared as whole sets (see CategoryOf).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace labelloop::labeling {

// The category of a label: the classes (already canonical) joined by '|'.
std::string CategoryOf(const std::vector<std::string>& classes);

// Cohen's kappa over items both annotators rated: each pair is (rating of A, rating
// of B). nullopt when there are no items. When chance agreement is 1 (both always use
// one and the same category) the kappa is 1.
std::optional<double> CohenKappa(const std::vector<std::pair<std::string, std::string>>& pairs);

// Fleiss' kappa: one vector of ratings per item, every item with the same number
// (>= 2) of ratings. nullopt when there are no items or the counts differ.
std::optional<double> FleissKappa(const std::vector<std::vector<std::string>>& items);

struct Rating {
  std::string annotator;
  std::string category;
};

struct PairKappa {
  std::string annotator_a;  // a < b
  std::string annotator_b;
  long items = 0;
  double kappa = 0;
};

// Cohen's kappa for every pair of annotators who rated at least one item in common;
// `items` holds the ratings of each item (one per annotator). Sorted by (a, b).
std::vector<PairKappa> PairwiseCohen(const std::vector<std::vector<Rating>>& items);

}  // namespace labelloop::labeling
