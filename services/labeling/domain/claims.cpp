#include "services/labeling/domain/claims.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <unordered_set>

namespace labelloop::labeling {

ClaimSize CheckClaimSize(int64_t n) {
  ClaimSize out;
  if (n < 0 || n > kMaxClaim) {
    out.error = "n: must be between 1 and " + std::to_string(kMaxClaim) + " (got " +
                std::to_string(n) + ")";
    return out;
  }
  out.n = n == 0 ? 1 : static_cast<int>(n);
  return out;
}

int RankingRequestSize(int need) { return std::min(need * 4 + 64, 500); }

std::vector<int64_t> RankedCandidates(const std::vector<int64_t>& ranked,
                                      const std::vector<int64_t>& exclude, size_t cap) {
  std::unordered_set<int64_t> seen(exclude.begin(), exclude.end());
  std::vector<int64_t> out;
  for (int64_t id : ranked) {
    if (out.size() >= cap) break;
    if (id <= 0 || !seen.insert(id).second) continue;
    out.push_back(id);
  }
  return out;
}

std::string CheckAnnotator(const std::string& annotator) {
  if (annotator.empty()) return "annotator: must not be empty";
  if (annotator.size() > 200) return "annotator: at most 200 characters";
  for (unsigned char c : annotator) {
    if (std::iscntrl(c)) return "annotator: must not contain control characters";
  }
  return "";
}

std::string CheckLeaseToken(const std::string& token) {
  if (token.empty()) return "lease_token: must not be empty";
  bool ok = token.size() == 36;
  for (size_t i = 0; ok && i < token.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    ok = dash ? token[i] == '-' : std::isxdigit(static_cast<unsigned char>(token[i])) != 0;
  }
  return ok ? "" : "lease_token: not a lease token (a uuid returned by ClaimNext)";
}

std::string CheckSecondsSpent(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 86400) {
    return "seconds_spent: must be between 0 and 86400";
  }
  return "";
}

std::string CheckSkipReason(const std::string& reason) {
  return reason.size() > 1000 ? "reason: at most 1000 characters" : "";
}

std::string CheckId(const char* field, int64_t id) {
  if (id <= 0)
    return std::string(field) + ": must be a positive id (got " + std::to_string(id) + ")";
  return "";
}

}  // namespace labelloop::labeling
