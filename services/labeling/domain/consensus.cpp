#include "services/labeling/domain/consensus.hpp"

#include <algorithm>
#include <map>

namespace labelloop::labeling {

namespace {

// Position of a class in the schema; classes no longer listed sort last, by name.
size_t SchemaPosition(const LabelSchema& schema, const std::string& name) {
  auto it = std::find(schema.classes.begin(), schema.classes.end(), name);
  return static_cast<size_t>(it - schema.classes.begin());
}

void SortBySchema(const LabelSchema& schema, std::vector<std::string>& classes) {
  std::sort(classes.begin(), classes.end(), [&](const std::string& a, const std::string& b) {
    auto pa = SchemaPosition(schema, a);
    auto pb = SchemaPosition(schema, b);
    return pa != pb ? pa < pb : a < b;
  });
}

}  // namespace

Consensus MajorityVote(const LabelSchema& schema,
                       const std::vector<std::vector<std::string>>& labels) {
  Consensus out;
  if (labels.empty()) return out;
  std::map<std::string, int> votes;
  for (const auto& label : labels) {
    // A set per annotator: a class counts once per annotator.
    std::vector<std::string> unique = label;
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    for (const auto& c : unique) ++votes[c];
  }
  const int n = static_cast<int>(labels.size());
  if (schema.kind == LabelKind::kSingle) {
    int best = 0;
    for (const auto& [c, v] : votes) best = std::max(best, v);
    std::vector<std::string> top;
    for (const auto& [c, v] : votes) {
      if (v == best) top.push_back(c);
    }
    SortBySchema(schema, top);
    out.tie = top.size() > 1;
    if (!top.empty()) out.classes.push_back(top.front());
    return out;
  }
  for (const auto& [c, v] : votes) {
    if (2 * v > n) out.classes.push_back(c);
    if (2 * v == n) out.tie = true;
  }
  SortBySchema(schema, out.classes);
  return out;
}

}  // namespace labelloop::labeling
