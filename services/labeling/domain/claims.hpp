// Rules for handing out items and checking lease-related requests, in plain C++:
// the size of a claim, which ranked candidates to try and in what order, and the
// shape of annotator names, lease tokens, time spent and skip reasons.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace labelloop::labeling {

inline constexpr int kMaxClaim = 100;

// n as asked (0 means 1); error names the field "n".
struct ClaimSize {
  int n = 1;
  std::string error;
};
ClaimSize CheckClaimSize(int64_t n);

// How many candidates to ask the ranking service for when `need` items are wanted:
// the top of the ranked order is often leased by other annotators already, so ask
// for more than needed (bounded).
int RankingRequestSize(int need);

// The ranked ids to try, in order: positive, first occurrence only, without `exclude`
// (items the annotator holds), at most `cap`.
std::vector<int64_t> RankedCandidates(const std::vector<int64_t>& ranked,
                                      const std::vector<int64_t>& exclude, size_t cap);

// Each returns "" when valid, else a message naming the field.
std::string CheckAnnotator(const std::string& annotator);
std::string CheckLeaseToken(const std::string& token);  // a canonical uuid
std::string CheckSecondsSpent(double seconds);
std::string CheckSkipReason(const std::string& reason);
std::string CheckId(const char* field, int64_t id);

}  // namespace labelloop::labeling
