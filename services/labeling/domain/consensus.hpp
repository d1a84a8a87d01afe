// Consensus of several annotators' labels on one item, by majority vote.
//
// Single-choice: the class with the most votes; when several share the top count the
// item is flagged as a tie and the consensus is the tied class listed first in the
// schema (so training always has one class, and reviewers find the flag).
// Multi-choice: a class is in the consensus set when more than half of the annotators
// chose it; a class chosen by exactly half flags a tie (and is left out).
#pragma once

#include <string>
#include <vector>

#include "services/labeling/domain/schema.hpp"

namespace labelloop::labeling {

struct Consensus {
  std::vector<std::string> classes;  // in schema order
  bool tie = false;
};

// `labels` holds one entry per annotator (each a list of class names).
Consensus MajorityVote(const LabelSchema& schema,
                       const std::vector<std::vector<std::string>>& labels);

}  // namespace labelloop::labeling
