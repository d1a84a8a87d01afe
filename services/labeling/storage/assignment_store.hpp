// Leases and labels in PostgreSQL: claiming items (the claim_items function of
// migration 0004), renewing, releasing and skipping leases, and submitting labels
// with their consensus (submit_label of 0004 when the label is the item's first). Each
// operation is one short transaction; exclusivity rests on the item row lock every
// writer of an item's leases and labels takes. Claims run on a pool of their own so
// that they never wait for a connection behind submits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/labeling/domain/combiner.hpp"
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

// How concurrent claims and submits are combined (see AssignmentStore).
struct BatchOptions {
  size_t claim_batches = 2;   // claim batches running at a time
  size_t submit_batches = 2;  // submit batches running at a time
  size_t max_batch = 64;      // calls per batch at most
};

class AssignmentStore {
 public:
  // Registers the prepared statements on the pools (call before serving). claim_pool
  // serves ClaimNext only (it may be `pool`). The oldest-first walk of a project starts
  // at the frontier claim_items returned (see migration 0004), below a lease released
  // here, and from the project's start when a lease it stepped over expires. Every
  // `rescan` a background thread looks for the project's first unsettled item from its
  // start and lowers the frontier to it (items committed late below the frontier,
  // leases released by another replica, wait at most that long), so that walk is not
  // paid inside a claim; with `rescan` 0 every claim walks from the start.
  //
  // Concurrent claims (and submits) are combined (BatchOptions): each batch is one call
  // of claim_batch (submit_batch) of migration 0006; a call that arrives alone runs
  // claim_items (submit_label) itself.
  AssignmentStore(pg::Pool& pool, pg::Pool& claim_pool, int lease_seconds,
                  std::chrono::milliseconds rescan, BatchOptions batches = {});
  ~AssignmentStore();
  AssignmentStore(const AssignmentStore&) = delete;
  AssignmentStore& operator=(const AssignmentStore&) = delete;

  // Claims and submits answer through `done`, exactly once, on the thread that ran their
  // batch (possibly the caller's, before returning); `done` must not throw.
  struct ClaimedLeases {
    std::vector<LeaseRecord> leases;
    bool by_ranking = false;  // the ranking service's order was used
  };
  using ClaimResult = Outcome<ClaimedLeases>;
  // The order: the ranker's candidates first (when one is set and has an order), then
  // oldest-first.
  void Claim(int64_t project_id, const std::string& annotator, int n,
             std::function<void(ClaimResult)> done);
  // Where the ranked candidates come from (the ranking service): called on the thread
  // running a claim batch, once per project in it, with the number of items the batch's
  // claims of that project want; empty: oldest-first. Set before serving.
  using Ranker = std::function<std::vector<int64_t>(int64_t project_id, int need)>;
  void SetRanker(Ranker ranker) { ranker_ = std::move(ranker); }
  Outcome<LeaseRecord> Renew(int64_t item_id, const std::string& token);
  Outcome<bool> Release(int64_t item_id, const std::string& token);
  Outcome<bool> Skip(int64_t item_id, const std::string& token, const std::string& reason);
  // With a lease token: the lease's annotator labels the item and the lease ends. A
  // lease that expired is accepted only while nobody else claimed the item since.
  void Submit(const SubmitInput& input, std::function<void(Outcome<SubmitResult>)> done);
  // Without a lease: changes the label input.annotator already gave the item.
  Outcome<SubmitResult> Relabel(const SubmitInput& input);
  int lease_seconds() const { return lease_seconds_; }

 private:
  struct ClaimCall {
    int64_t project_id = 0;
    std::string annotator;
    int n = 0;
    std::vector<int64_t> ranked;  // filled by RunClaims from the ranker
  };
  using ClaimCombiner = Combiner<ClaimCall, ClaimResult>;
  using SubmitCombiner = Combiner<SubmitInput, Outcome<SubmitResult>>;
  void RunClaims(const std::vector<ClaimCombiner::Call*>& batch);
  void RunSubmits(const std::vector<SubmitCombiner::Call*>& batch);
  // One call of claim_batch for distinct annotators of one project with one ranked list.
  void ClaimTogether(const std::vector<ClaimCombiner::Call*>& group);
  using LeasesResult = Outcome<std::vector<LeaseRecord>>;
  LeasesResult ClaimOne(const ClaimCall& call);
  static void Answer(ClaimCombiner::Call* call, LeasesResult leases);
  Outcome<SubmitResult> SubmitOne(const SubmitInput& input);
  // One call of submit_batch for distinct items; the calls it did not write run alone.
  void SubmitTogether(const std::vector<SubmitCombiner::Call*>& group);
  Outcome<SubmitResult> Write(const SubmitInput& input, bool with_lease);
  // Where the next oldest-first walk of the project starts, and what a claim learnt: a
  // frontier and the earliest expiry (µs since the epoch, 0: none) of the leases its walk
  // stepped over. A release lowers the frontier. `generation` is FrontierFor's: what a
  // claim learnt is dropped when the frontier was lowered or reset since it started.
  struct FrontierStart {
    int64_t from = 0;
    uint64_t generation = 0;
  };
  FrontierStart FrontierFor(int64_t project_id);
  void LearnFrontier(int64_t project_id, uint64_t generation, int64_t frontier,
                     int64_t earliest_expiry_us);
  void LowerFrontier(int64_t project_id, int64_t item_id);
  Outcome<bool> EndLease(int64_t item_id, const std::string& token, const char* outcome,
                         const std::string* skip_reason);

  // Lowers each project's frontier to its first unsettled item every `rescan_`.
  void RescanLoop();

  struct Frontier {
    int64_t next_id = 0;
    uint64_t generation = 0;
    // A lease the walk stepped over expires then: the next claim walks from the start.
    std::chrono::steady_clock::time_point expiry_at = std::chrono::steady_clock::time_point::max();
    // The background rescan is due then.
    std::chrono::steady_clock::time_point rescan_at;
  };

  pg::Pool& pool_;
  pg::Pool& claim_pool_;
  int lease_seconds_;
  std::chrono::milliseconds rescan_;
  std::mutex frontier_mu_;
  std::unordered_map<int64_t, Frontier> frontiers_;
  Ranker ranker_;
  ClaimCombiner claims_;
  SubmitCombiner submits_;
  std::mutex rescan_mu_;
  std::condition_variable rescan_cv_;
  bool stopping_ = false;
  std::thread rescan_thread_;
};

}  // namespace labelloop::labeling::storage
