// Leases and labels in PostgreSQL: claiming items (the claim_items function of
// migration 0003), renewing, releasing and skipping leases, and submitting labels
// with their consensus. Each operation is one short transaction; exclusivity rests on
// the item row lock every writer of an item's leases and labels takes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/labeling/domain/outcome.hpp"

namespace labelloop::labeling::storage {

struct LeaseRecord {
  int64_t item_id = 0;
  std::string token;
  std::string annotator;
  int64_t claimed_at_us = 0;
  int64_t expires_at_us = 0;
  bool already_held = false;
  bool ranked = false;
};

struct SubmitInput {
  int64_t item_id = 0;
  std::string lease_token;  // empty for a relabel
  std::string annotator;    // for a relabel; checked against the lease when given
  std::vector<std::string> classes;
  double seconds_spent = 0;
};

struct SubmitResult {
  int64_t project_id = 0;
  int64_t item_id = 0;
  std::string annotator;
  std::vector<std::string> classes;  // canonical
  std::string item_status;
  int judgements = 0;
  std::vector<std::string> consensus;
  bool consensus_tie = false;
  bool relabeled = false;
  bool item_labeled = false;
  int64_t labeled_count = 0;
};

class AssignmentStore {
 public:
  // Registers the prepared statements on the pool (call before serving).
  AssignmentStore(pg::Pool& pool, int lease_seconds);

  Outcome<std::vector<LeaseRecord>> Claim(int64_t project_id, const std::string& annotator, int n,
                                          const std::vector<int64_t>& ranked);
  Outcome<LeaseRecord> Renew(int64_t item_id, const std::string& token);
  Outcome<bool> Release(int64_t item_id, const std::string& token);
  Outcome<bool> Skip(int64_t item_id, const std::string& token, const std::string& reason);
  // With a lease token: the lease's annotator labels the item and the lease ends. A
  // lease that expired is accepted only while nobody else claimed the item since.
  Outcome<SubmitResult> Submit(const SubmitInput& input);
  // Without a lease: changes the label input.annotator already gave the item.
  Outcome<SubmitResult> Relabel(const SubmitInput& input);
  int lease_seconds() const { return lease_seconds_; }

 private:
  Outcome<SubmitResult> Write(const SubmitInput& input, bool with_lease);
  Outcome<bool> EndLease(int64_t item_id, const std::string& token, const char* outcome,
                         const std::string* skip_reason);

  pg::Pool& pool_;
  int lease_seconds_;
};

}  // namespace labelloop::labeling::storage
