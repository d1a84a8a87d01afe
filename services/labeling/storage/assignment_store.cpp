#include "services/labeling/storage/assignment_store.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "services/labeling/domain/consensus.hpp"
#include "services/labeling/domain/schema.hpp"
#include "services/labeling/storage/pg_util.hpp"
#include "services/labeling/storage/project_store.hpp"

namespace labelloop::labeling::storage {

namespace {

constexpr const char* kEpoch = "(extract(epoch FROM {}) * 1000000)::bigint";

std::string Epoch(const std::string& column) {
  std::string s = kEpoch;
  return s.replace(s.find("{}"), 2, column);
}

// Why a token has no live lease row on the item: ended (and how), or never existed.
Error MissingLease(pqxx::transaction_base& tx, int64_t item_id, const std::string& token) {
  auto r = tx.exec_prepared("ll_token_history", item_id, token);
  if (r.empty()) {
    return NotFound("lease_token: no lease with this token on item " + std::to_string(item_id));
  }
  const std::string outcome = r[0][0].is_null() ? "ended" : r[0][0].as<std::string>();
  if (outcome == "expired") {
    return FailedPrecondition(
        "lease_token: the lease expired and another annotator has claimed the item since; "
        "the label was not stored (claim a new item)");
  }
  return FailedPrecondition("lease_token: this lease has already ended (" + outcome + ")");
}

std::vector<std::vector<std::string>> ParseOtherLabels(const std::string& json) {
  std::vector<std::vector<std::string>> out;
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (!parsed.is_array()) return out;
  for (const auto& entry : parsed) {
    std::vector<std::string> classes;
    if (entry.contains("c") && entry["c"].is_array()) {
      for (const auto& c : entry["c"]) classes.push_back(c.get<std::string>());
    }
    out.push_back(std::move(classes));
  }
  return out;
}

}  // namespace

AssignmentStore::AssignmentStore(pg::Pool& pool, pg::Pool& claim_pool, int lease_seconds,
                                 std::chrono::milliseconds rescan, BatchOptions batches)
    : pool_(pool),
      claim_pool_(claim_pool),
      lease_seconds_(lease_seconds),
      rescan_(rescan),
      claims_(batches.claim_batches, batches.max_batch,
              [this](const auto& batch) { RunClaims(batch); }),
      submits_(batches.submit_batches, batches.max_batch,
               [this](const auto& batch) { RunSubmits(batch); }) {
  claim_pool_.Prepare("ll_claim",
                      "SELECT item_id, token::text, " + Epoch("claimed_at") + ", " +
                          Epoch("expires_at") +
                          ", already_held, ranked, frontier "
                          "FROM labeling.claim_items($1, $2, $3, $4, $5::bigint[], $6)");
  // The project's first unsettled item from its start (the frontier claim_items finds
  // when it walks from 0), for the background rescan.
  pool_.Prepare("ll_first_unsettled",
                "SELECT (SELECT i.id + 0 FROM labeling.items i WHERE i.project_id = p.id AND "
                "i.status = 'unlabeled' AND (p.judgements_per_item > 1 OR NOT EXISTS (SELECT 1 "
                "FROM labeling.leases l WHERE l.item_id = i.id AND l.expires_at > "
                "clock_timestamp())) ORDER BY i.id + 0 LIMIT 1) FROM labeling.projects p "
                "WHERE p.id = $1");
  claim_pool_.Prepare("ll_claim_batch",
                      "SELECT slot, item_id, token::text, " + Epoch("claimed_at") + ", " +
                          Epoch("expires_at") +
                          ", already_held, ranked, frontier FROM labeling.claim_batch($1, "
                          "$2::text[], $3::integer[], $4, $5::bigint[], $6)");
  // Locks the item row (every writer of an item's leases and labels does), and holds
  // the project's class lock shared so UpdateProject cannot drop a class meanwhile.
  pool_.Prepare("ll_lock_item_for_label",
                "SELECT i.project_id, i.status, i.judgements, p.judgements_per_item, "
                "p.label_kind, array_to_json(p.classes)::text, p.status, "
                "pg_advisory_xact_lock_shared($2::bigint + i.project_id) "
                "FROM labeling.items i JOIN labeling.projects p ON p.id = i.project_id "
                "WHERE i.id = $1 FOR UPDATE OF i");
  pool_.Prepare("ll_lock_item", "SELECT project_id FROM labeling.items WHERE id = $1 FOR UPDATE");
  // The whole submit of an item's first label, in one round trip (migration 0004).
  pool_.Prepare("ll_submit",
                "SELECT outcome, project_id, annotator, array_to_json(classes)::text, "
                "judgements, item_status, labeled_count, label_kind, "
                "array_to_json(schema_classes)::text "
                "FROM labeling.submit_label($1, $2::uuid, $3, $4::text[], $5, $6)");
  pool_.Prepare(
      "ll_submit_batch",
      "SELECT slot, project_id, annotator, array_to_json(classes)::text, judgements, "
      "item_status, labeled_count FROM labeling.submit_batch($1::bigint[], "
      "$2::uuid[], $3::text[], $4::integer[], $5::integer[], $6::text[], $7::real[], $8)");
  // A new statement after the lock: a fresh snapshot that sees every committed lease.
  // A lease row still there means nobody claimed the item since it expired (a claim
  // ends the expired leases of the items it takes).
  pool_.Prepare(
      "ll_lease_state",
      "SELECT l.annotator, "
      "(SELECT coalesce(json_agg(json_build_object('a', o.annotator, 'c', o.classes)), "
      "'[]')::text FROM labeling.labels o WHERE o.item_id = $1 AND o.annotator <> l.annotator), "
      "EXISTS (SELECT 1 FROM labeling.labels m WHERE m.item_id = $1 AND m.annotator = "
      "l.annotator), " +
          Epoch("l.claimed_at") + ", " + Epoch("l.expires_at") +
          " FROM labeling.leases l WHERE l.token = $2::uuid AND l.item_id = $1");
  pool_.Prepare("ll_relabel_state",
                "SELECT (SELECT coalesce(json_agg(json_build_object('a', o.annotator, 'c', "
                "o.classes)), '[]')::text FROM labeling.labels o WHERE o.item_id = $1 AND "
                "o.annotator <> $2), EXISTS (SELECT 1 FROM labeling.labels m WHERE m.item_id "
                "= $1 AND m.annotator = $2)");
  pool_.Prepare("ll_token_history",
                "SELECT outcome FROM labeling.lease_history WHERE item_id = $1 AND token = "
                "$2::uuid ORDER BY id DESC LIMIT 1");
  // One statement writes everything the submit changes: the label (history only for a
  // relabel: old → new), the end of the lease, the item's judgements/status/consensus
  // (computed by the caller from the labels read under the item lock) and the labeled
  // counter; it returns the project's labeled count.
  pool_.Prepare(
      "ll_write",
      "WITH old AS (SELECT classes FROM labeling.labels WHERE item_id = $1 AND annotator = $3), "
      "up AS (INSERT INTO labeling.labels AS lb (item_id, project_id, annotator, classes, "
      "  seconds_spent) VALUES ($1, $2, $3, $4::text[], $5) ON CONFLICT (item_id, annotator) "
      "  DO UPDATE SET classes = EXCLUDED.classes, "
      "  seconds_spent = lb.seconds_spent + EXCLUDED.seconds_spent, updated_at = now() "
      "  RETURNING 1), "
      "hist AS (INSERT INTO labeling.label_history (item_id, project_id, annotator, "
      "  old_classes, new_classes) SELECT $1, $2, $3, old.classes, $4::text[] FROM old), "
      "del AS (DELETE FROM labeling.leases WHERE item_id = $1 AND token = NULLIF($6, '')::uuid "
      "  RETURNING item_id, project_id, annotator, token, claimed_at, expires_at), "
      "lh AS (INSERT INTO labeling.lease_history (item_id, project_id, annotator, token, "
      "  claimed_at, expires_at, ended_at, outcome) SELECT item_id, project_id, annotator, "
      "  token, claimed_at, expires_at, clock_timestamp(), 'submitted' FROM del), "
      "upd AS (UPDATE labeling.items SET judgements = $7, status = $8, "
      "  consensus = $9::text[], consensus_tie = $10 WHERE id = $1 RETURNING 1), "
      "cnt AS (INSERT INTO labeling.label_counts AS lc (project_id, shard, labeled) "
      "  SELECT $2, pg_backend_pid() % 256, 1 WHERE $11 ON CONFLICT (project_id, shard) "
      "  DO UPDATE SET labeled = lc.labeled + 1 RETURNING 1) "
      "SELECT coalesce((SELECT sum(labeled) FROM labeling.label_counts WHERE project_id = $2), "
      "0) + CASE WHEN $11 THEN 1 ELSE 0 END, (SELECT count(*) FROM up), "
      "(SELECT count(*) FROM upd), (SELECT count(*) FROM cnt)");
  pool_.Prepare("ll_end_lease",
                "WITH del AS (DELETE FROM labeling.leases WHERE item_id = $1 AND token = "
                "$2::uuid RETURNING item_id, project_id, annotator, token, claimed_at, "
                "expires_at), "
                "lh AS (INSERT INTO labeling.lease_history (item_id, project_id, annotator, "
                "token, claimed_at, expires_at, ended_at, outcome) SELECT item_id, project_id, "
                "annotator, token, claimed_at, expires_at, clock_timestamp(), $3 FROM del "
                "RETURNING 1) "
                "SELECT annotator, project_id, (SELECT count(*) FROM lh) FROM del");
  pool_.Prepare("ll_skip",
                "INSERT INTO labeling.skips (item_id, project_id, annotator, reason) "
                "VALUES ($1, $2, $3, $4)");
  pool_.Prepare("ll_renew",
                "WITH u AS (UPDATE labeling.leases SET expires_at = clock_timestamp() + "
                "make_interval(secs => $3::double precision) WHERE item_id = $1 AND token = "
                "$2::uuid RETURNING annotator, claimed_at, expires_at) "
                "SELECT annotator, " +
                    Epoch("claimed_at") + ", " + Epoch("expires_at") + " FROM u");
  if (rescan_.count() > 0) rescan_thread_ = std::thread([this] { RescanLoop(); });
}

AssignmentStore::~AssignmentStore() {
  {
    std::lock_guard lock(rescan_mu_);
    stopping_ = true;
  }
  rescan_cv_.notify_all();
  if (rescan_thread_.joinable()) rescan_thread_.join();
}

void AssignmentStore::RescanLoop() {
  // Checks a few times per interval, so a project is rescanned at most ~rescan_/4 late.
  const auto tick = std::max(std::chrono::milliseconds(20), rescan_ / 4);
  std::unique_lock lock(rescan_mu_);
  while (!rescan_cv_.wait_for(lock, tick, [this] { return stopping_; })) {
    lock.unlock();
    std::vector<int64_t> due;
    {
      const auto now = std::chrono::steady_clock::now();
      std::lock_guard frontier_lock(frontier_mu_);
      for (auto& [project_id, f] : frontiers_) {
        if (now < f.rescan_at) continue;
        f.rescan_at = now + rescan_;
        due.push_back(project_id);
      }
    }
    for (const int64_t project_id : due) {
      auto first = Guarded<int64_t>(pool_, "claim rescan", [&](pqxx::connection& c) {
        pqxx::work tx(c);
        tx.exec("SET LOCAL enable_seqscan = off");  // as in claim_items: keyed lookups only
        auto r = tx.exec_prepared("ll_first_unsettled", project_id);
        tx.commit();
        return Outcome<int64_t>(r.empty() || r[0][0].is_null() ? int64_t{-1}
                                                               : r[0][0].as<int64_t>());
      });
      if (!first.ok()) {
        spdlog::warn("claim rescan of project {}: {}", project_id, first.error().message);
      } else if (first.value() >= 0) {
        std::lock_guard frontier_lock(frontier_mu_);
        auto it = frontiers_.find(project_id);
        // Only ever lowered here (and what claims running now learn is then dropped).
        if (it != frontiers_.end() && first.value() < it->second.next_id) {
          it->second.next_id = first.value();
          ++it->second.generation;
        }
      }
    }
    lock.lock();
  }
}

void AssignmentStore::Claim(int64_t project_id, const std::string& annotator, int n,
                            std::function<void(ClaimResult)> done) {
  claims_.Submit(ClaimCall{project_id, annotator, n, {}}, std::move(done));
}

void AssignmentStore::Answer(ClaimCombiner::Call* call, LeasesResult leases) {
  if (!leases.ok()) {
    call->result.emplace(leases.error());
    return;
  }
  call->result.emplace(ClaimedLeases{std::move(leases.value()), !call->request.ranked.empty()});
}

void AssignmentStore::RunClaims(const std::vector<ClaimCombiner::Call*>& batch) {
  // The ranking service is asked once per project in the batch (not once per claim, and
  // not on the threads taking calls): for what all its claims want together.
  if (ranker_) {
    std::vector<std::pair<int64_t, int>> need;  // project → items wanted
    for (auto* call : batch) {
      auto it = std::find_if(need.begin(), need.end(),
                             [&](const auto& p) { return p.first == call->request.project_id; });
      if (it == need.end()) {
        need.emplace_back(call->request.project_id, call->request.n);
      } else {
        it->second += call->request.n;
      }
    }
    for (const auto& [project_id, n] : need) {
      std::vector<int64_t> ranked;
      try {
        ranked = ranker_(project_id, n);
      } catch (const std::exception& e) {
        spdlog::warn("ranking for project {}: {}; oldest-first", project_id, e.what());
      }
      if (ranked.empty()) continue;
      for (auto* call : batch) {
        if (call->request.project_id == project_id) call->request.ranked = ranked;
      }
    }
  }
  // Groups of one project and one ranked list with distinct annotators. A second call of
  // an annotator runs after its group, so it gets what the first got (already held), as
  // it would one after the other.
  std::vector<std::vector<ClaimCombiner::Call*>> groups;
  std::vector<ClaimCombiner::Call*> later;
  for (auto* call : batch) {
    const ClaimCall& c = call->request;
    auto group = std::find_if(groups.begin(), groups.end(), [&](const auto& g) {
      return g[0]->request.project_id == c.project_id && g[0]->request.ranked == c.ranked;
    });
    if (group == groups.end()) {
      groups.push_back({call});
    } else if (std::any_of(group->begin(), group->end(), [&](const auto* other) {
                 return other->request.annotator == c.annotator;
               })) {
      later.push_back(call);
    } else {
      group->push_back(call);
    }
  }
  for (const auto& group : groups) {
    if (group.size() == 1) {
      Answer(group[0], ClaimOne(group[0]->request));
    } else {
      ClaimTogether(group);
    }
  }
  for (auto* call : later) Answer(call, ClaimOne(call->request));
}

void AssignmentStore::ClaimTogether(const std::vector<ClaimCombiner::Call*>& group) {
  const ClaimCall& first = group[0]->request;
  const FrontierStart start = FrontierFor(first.project_id);
  std::vector<std::string> annotators;
  std::vector<int64_t> counts;
  for (const auto* call : group) {
    annotators.push_back(call->request.annotator);
    counts.push_back(call->request.n);
  }
  const std::string ranked_array = IntArray(first.ranked);
  std::vector<std::vector<LeaseRecord>> leases;
  int64_t frontier = 0;
  int64_t earliest_expiry_us = 0;
  bool one_by_one = false;
  auto out = Guarded<bool>(claim_pool_, "ClaimNext", [&](pqxx::connection& c) {
    leases.assign(group.size(), {});
    pqxx::nontransaction tx(c);
    auto r = tx.exec_prepared("ll_claim_batch", first.project_id, TextArray(annotators),
                              IntArray(counts), lease_seconds_,
                              first.ranked.empty() ? nullptr : ranked_array.c_str(), start.from);
    for (const auto& row : r) {
      if (row[0].is_null()) {  // the last row: the frontier and the earliest expiry
        if (!row[7].is_null()) frontier = row[7].as<int64_t>();
        if (!row[4].is_null()) earliest_expiry_us = row[4].as<int64_t>();
        continue;
      }
      const auto slot = row[0].as<size_t>();
      if (slot == 0) {  // judgements_per_item > 1: claim_items, one annotator at a time
        one_by_one = true;
        continue;
      }
      if (slot > group.size()) throw std::runtime_error("claim_batch: slot out of range");
      leases[slot - 1].push_back({row[1].as<int64_t>(), row[2].as<std::string>(),
                                  annotators[slot - 1], row[3].as<int64_t>(), row[4].as<int64_t>(),
                                  row[5].as<bool>(), row[6].as<bool>()});
    }
    return Outcome<bool>(true);
  });
  if (out.ok() && one_by_one) {
    for (auto* call : group) Answer(call, ClaimOne(call->request));
    return;
  }
  if (out.ok()) LearnFrontier(first.project_id, start.generation, frontier, earliest_expiry_us);
  for (size_t i = 0; i < group.size(); ++i) {
    if (out.ok()) {
      Answer(group[i], std::move(leases[i]));
    } else {
      Answer(group[i], out.error());
    }
  }
}

AssignmentStore::LeasesResult AssignmentStore::ClaimOne(const ClaimCall& call) {
  const int64_t project_id = call.project_id;
  const std::string& annotator = call.annotator;
  const int n = call.n;
  const std::vector<int64_t>& ranked = call.ranked;
  const FrontierStart start = FrontierFor(project_id);
  int64_t frontier = 0;
  int64_t earliest_expiry_us = 0;
  auto out = Guarded<std::vector<LeaseRecord>>(claim_pool_, "ClaimNext", [&](pqxx::connection& c) {
    // One statement in autocommit: the function is the whole (short) transaction.
    pqxx::nontransaction tx(c);
    const std::string ranked_array = IntArray(ranked);
    auto r = tx.exec_prepared("ll_claim", project_id, annotator, n, lease_seconds_,
                              ranked.empty() ? nullptr : ranked_array.c_str(), start.from);
    std::vector<LeaseRecord> leases;
    leases.reserve(r.size());
    for (const auto& row : r) {
      if (row[0].is_null()) {  // the last row: the frontier and the earliest expiry
        if (!row[6].is_null()) frontier = row[6].as<int64_t>();
        if (!row[3].is_null()) earliest_expiry_us = row[3].as<int64_t>();
        continue;
      }
      leases.push_back({row[0].as<int64_t>(), row[1].as<std::string>(), annotator,
                        row[2].as<int64_t>(), row[3].as<int64_t>(), row[4].as<bool>(),
                        row[5].as<bool>()});
    }
    return Outcome<std::vector<LeaseRecord>>(std::move(leases));
  });
  if (out.ok()) LearnFrontier(project_id, start.generation, frontier, earliest_expiry_us);
  return out;
}

AssignmentStore::FrontierStart AssignmentStore::FrontierFor(int64_t project_id) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(frontier_mu_);
  // A bound on memory; a forgotten project only walks from its start once.
  if (frontiers_.size() > 100000) frontiers_.clear();
  auto [it, added] = frontiers_.try_emplace(project_id);
  auto& f = it->second;
  if (added) f.rescan_at = now + rescan_;
  if (now >= f.expiry_at || rescan_.count() == 0) {
    f.expiry_at = std::chrono::steady_clock::time_point::max();
    f.next_id = 0;
    ++f.generation;
  }
  return {f.next_id, f.generation};
}

void AssignmentStore::LearnFrontier(int64_t project_id, uint64_t generation, int64_t frontier,
                                    int64_t earliest_expiry_us) {
  std::lock_guard lock(frontier_mu_);
  auto& f = frontiers_[project_id];
  if (generation != f.generation) return;
  // Every frontier a claim of this generation returns is valid, so the highest one wins.
  f.next_id = std::max(f.next_id, frontier);
  if (earliest_expiry_us > 0) {
    const auto wall_now = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    const auto expiry =
        std::chrono::steady_clock::now() +
        std::chrono::microseconds(std::max<int64_t>(0, earliest_expiry_us - wall_now));
    f.expiry_at = std::min(f.expiry_at, expiry);
  }
}

void AssignmentStore::LowerFrontier(int64_t project_id, int64_t item_id) {
  std::lock_guard lock(frontier_mu_);
  auto it = frontiers_.find(project_id);
  if (it == frontiers_.end()) return;
  it->second.next_id = std::min(it->second.next_id, item_id);
  ++it->second.generation;
}

Outcome<LeaseRecord> AssignmentStore::Renew(int64_t item_id, const std::string& token) {
  return Guarded<LeaseRecord>(pool_, "RenewLease", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    if (tx.exec_prepared("ll_lock_item", item_id).empty()) {
      return Outcome<LeaseRecord>(NotFound("item_id: no item " + std::to_string(item_id)));
    }
    auto st = tx.exec_prepared("ll_lease_state", item_id, token);
    if (st.empty()) return Outcome<LeaseRecord>(MissingLease(tx, item_id, token));
    auto r = tx.exec_prepared1("ll_renew", item_id, token, lease_seconds_);
    tx.commit();
    return Outcome<LeaseRecord>(LeaseRecord{item_id, token, r[0].as<std::string>(),
                                            r[1].as<int64_t>(), r[2].as<int64_t>(), true, false});
  });
}

Outcome<bool> AssignmentStore::EndLease(int64_t item_id, const std::string& token,
                                        const char* outcome, const std::string* skip_reason) {
  return Guarded<bool>(
      pool_, skip_reason != nullptr ? "Skip" : "ReleaseLease", [&](pqxx::connection& c) {
        pqxx::work tx(c);
        if (tx.exec_prepared("ll_lock_item", item_id).empty()) {
          return Outcome<bool>(NotFound("item_id: no item " + std::to_string(item_id)));
        }
        auto r = tx.exec_prepared("ll_end_lease", item_id, token, outcome);
        if (r.empty()) return Outcome<bool>(MissingLease(tx, item_id, token));
        const auto project_id = r[0][1].as<int64_t>();
        if (skip_reason != nullptr) {
          tx.exec_prepared("ll_skip", item_id, project_id, r[0][0].as<std::string>(), *skip_reason);
        }
        tx.commit();
        // The item is claimable again, below the frontier (for the others, after a skip).
        LowerFrontier(project_id, item_id);
        return Outcome<bool>(true);
      });
}

Outcome<bool> AssignmentStore::Release(int64_t item_id, const std::string& token) {
  return EndLease(item_id, token, "released", nullptr);
}

Outcome<bool> AssignmentStore::Skip(int64_t item_id, const std::string& token,
                                    const std::string& reason) {
  return EndLease(item_id, token, "skipped", &reason);
}

void AssignmentStore::Submit(const SubmitInput& in,
                             std::function<void(Outcome<SubmitResult>)> done) {
  submits_.Submit(in, std::move(done));
}

void AssignmentStore::RunSubmits(const std::vector<SubmitCombiner::Call*>& batch) {
  // Distinct items go together; a second submit of an item runs after them, alone, as it
  // would one after the other (it then finds the lease ended).
  std::vector<SubmitCombiner::Call*> together;
  std::vector<SubmitCombiner::Call*> later;
  for (auto* call : batch) {
    const bool repeat = std::any_of(together.begin(), together.end(), [&](const auto* other) {
      return other->request.item_id == call->request.item_id;
    });
    (repeat || call->request.lease_token.empty() ? later : together).push_back(call);
  }
  if (together.size() == 1) {
    together[0]->result.emplace(SubmitOne(together[0]->request));
  } else if (!together.empty()) {
    SubmitTogether(together);
  }
  for (auto* call : later) call->result.emplace(SubmitOne(call->request));
}

void AssignmentStore::SubmitTogether(const std::vector<SubmitCombiner::Call*>& group) {
  std::vector<int64_t> items;
  std::vector<std::string> tokens;
  std::vector<std::string> annotators;
  std::vector<int64_t> class_at;
  std::vector<int64_t> class_n;
  std::vector<std::string> classes;
  std::string seconds = "{";
  for (const auto* call : group) {
    const SubmitInput& in = call->request;
    items.push_back(in.item_id);
    tokens.push_back(in.lease_token);
    annotators.push_back(in.annotator);
    class_at.push_back(static_cast<int64_t>(classes.size()) + 1);
    class_n.push_back(static_cast<int64_t>(in.classes.size()));
    classes.insert(classes.end(), in.classes.begin(), in.classes.end());
    seconds += fmt::format("{}{}", seconds.size() > 1 ? "," : "", in.seconds_spent);
  }
  seconds += "}";
  std::vector<std::optional<SubmitResult>> written;
  auto out = Guarded<bool>(pool_, "SubmitLabel", [&](pqxx::connection& c) {
    written.assign(group.size(), std::nullopt);
    // One statement in autocommit: submit_batch is the whole transaction.
    pqxx::nontransaction tx(c);
    auto r = tx.exec_prepared("ll_submit_batch", IntArray(items), TextArray(tokens),
                              TextArray(annotators), IntArray(class_at), IntArray(class_n),
                              TextArray(classes), seconds, kClassLockBase);
    for (const auto& row : r) {
      const auto slot = row[0].as<size_t>();
      if (slot == 0 || slot > group.size()) {
        throw std::runtime_error("submit_batch: slot out of range");
      }
      SubmitResult res;
      res.item_id = items[slot - 1];
      res.project_id = row[1].as<int64_t>();
      res.annotator = row[2].as<std::string>();
      res.classes = JsonStrings(row[3]);
      res.judgements = row[4].as<int>();
      res.item_status = row[5].as<std::string>();
      res.item_labeled = res.item_status == "labeled";
      if (res.item_labeled) res.consensus = res.classes;
      res.labeled_count = row[6].as<int64_t>();
      written[slot - 1] = std::move(res);
    }
    return Outcome<bool>(true);
  });
  // What the batch did not write (or all of it when the batch failed: nothing was
  // written then) runs alone, which gives each call its own answer or error.
  for (size_t i = 0; i < group.size(); ++i) {
    if (out.ok() && written[i]) {
      group[i]->result.emplace(std::move(*written[i]));
    } else {
      group[i]->result.emplace(SubmitOne(group[i]->request));
    }
  }
}

Outcome<SubmitResult> AssignmentStore::SubmitOne(const SubmitInput& in) {
  using Result = Outcome<SubmitResult>;
  bool others = false;
  auto first = Guarded<SubmitResult>(pool_, "SubmitLabel", [&](pqxx::connection& c) -> Result {
    // One statement in autocommit: submit_label is the whole transaction.
    pqxx::nontransaction tx(c);
    auto r = tx.exec_prepared1("ll_submit", in.item_id, in.lease_token, in.annotator,
                               TextArray(in.classes), in.seconds_spent, kClassLockBase);
    const std::string outcome = r[0].as<std::string>();
    if (outcome == "no_lease") return MissingLease(tx, in.item_id, in.lease_token);
    if (outcome == "invalid") {
      LabelSchema schema;
      schema.kind = ParseLabelKind(r[7].as<std::string>()).value_or(LabelKind::kSingle);
      schema.classes = JsonStrings(r[8]);
      auto check = CheckLabel(schema, in.classes);
      if (!check.ok()) return InvalidArgument(check.error);
      spdlog::error("SubmitLabel: submit_label refused classes CheckLabel accepts (item {})",
                    in.item_id);
      return Error{ErrorKind::kInternal, "SubmitLabel: internal error"};
    }
    if (outcome == "others") {
      others = true;
      return SubmitResult{};
    }
    SubmitResult res;
    res.project_id = r[1].as<int64_t>();
    res.item_id = in.item_id;
    res.annotator = r[2].as<std::string>();
    res.classes = JsonStrings(r[3]);
    res.judgements = r[4].as<int>();
    res.item_status = r[5].as<std::string>();
    res.item_labeled = res.item_status == "labeled";
    // The only label of the item is its consensus (MajorityVote of one label).
    if (res.item_labeled) res.consensus = res.classes;
    res.labeled_count = r[6].as<int64_t>();
    return res;
  });
  // Other labels on the item: the consensus is computed here, under the item lock.
  if (others) return Write(in, true);
  return first;
}

Outcome<SubmitResult> AssignmentStore::Relabel(const SubmitInput& input) {
  return Write(input, false);
}

Outcome<SubmitResult> AssignmentStore::Write(const SubmitInput& in, bool with_lease) {
  using Result = Outcome<SubmitResult>;
  return Guarded<SubmitResult>(
      pool_, with_lease ? "SubmitLabel" : "Relabel", [&](pqxx::connection& c) -> Result {
        pqxx::work tx(c);
        auto item = tx.exec_prepared("ll_lock_item_for_label", in.item_id, kClassLockBase);
        if (item.empty()) return NotFound("item_id: no item " + std::to_string(in.item_id));
        SubmitResult res;
        res.item_id = in.item_id;
        res.project_id = item[0][0].as<int64_t>();
        const std::string old_status = item[0][1].as<std::string>();
        const int k = item[0][3].as<int>();
        LabelSchema schema;
        schema.kind = ParseLabelKind(item[0][4].as<std::string>()).value_or(LabelKind::kSingle);
        schema.classes = JsonStrings(item[0][5]);
        const std::string project_status = item[0][6].as<std::string>();
        if (project_status != "active") {
          return FailedPrecondition("project " + std::to_string(res.project_id) + " is " +
                                    project_status + ": labels are not accepted");
        }
        std::string others_json;
        bool mine = false;
        if (with_lease) {
          auto st = tx.exec_prepared("ll_lease_state", in.item_id, in.lease_token);
          if (st.empty()) return MissingLease(tx, in.item_id, in.lease_token);
          res.annotator = st[0][0].as<std::string>();
          if (!in.annotator.empty() && in.annotator != res.annotator) {
            return FailedPrecondition("annotator: the lease belongs to another annotator");
          }
          others_json = st[0][1].as<std::string>();
          mine = st[0][2].as<bool>();
        } else {
          res.annotator = in.annotator;
          auto st = tx.exec_prepared1("ll_relabel_state", in.item_id, in.annotator);
          others_json = st[0].as<std::string>();
          mine = st[1].as<bool>();
          if (!mine) {
            return FailedPrecondition("annotator: '" + in.annotator + "' has not labeled item " +
                                      std::to_string(in.item_id) +
                                      " yet; claim it and submit a label first");
          }
        }
        auto check = CheckLabel(schema, in.classes);
        if (!check.ok()) return InvalidArgument(check.error);
        res.classes = check.classes;

        auto labels = ParseOtherLabels(others_json);
        labels.push_back(check.classes);
        Consensus consensus = MajorityVote(schema, labels);
        res.judgements = static_cast<int>(labels.size());
        const bool labeled = res.judgements >= k;
        res.item_status = labeled ? "labeled" : "unlabeled";
        res.item_labeled = labeled;
        if (labeled) {
          res.consensus = consensus.classes;
          res.consensus_tie = consensus.tie;
        }
        res.relabeled = mine;
        const bool became_labeled = labeled && old_status != "labeled";
        const std::string consensus_array = TextArray(res.consensus);
        auto w = tx.exec_prepared1("ll_write", in.item_id, res.project_id, res.annotator,
                                   TextArray(check.classes), in.seconds_spent,
                                   with_lease ? in.lease_token : std::string(), res.judgements,
                                   res.item_status, labeled ? consensus_array.c_str() : nullptr,
                                   res.consensus_tie, became_labeled);
        res.labeled_count = w[0].as<int64_t>();
        tx.commit();
        return res;
      });
}

}  // namespace labelloop::labeling::storage
