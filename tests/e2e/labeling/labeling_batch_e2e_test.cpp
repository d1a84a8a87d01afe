// Claims and submits in batches (migration 0006): claim_batch and submit_batch called
// directly on the service's database, with a reload, a skip, a project with two
// judgements per item, bad tokens, classes and annotators in one batch; and annotators
// racing through a service that combines every concurrent call.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "tests/e2e/labeling/labeling_harness.hpp"

namespace labelloop::e2e {
namespace {

#define START_OR_SKIP(h, ...) \
  if (!(h).Start(__VA_ARGS__)) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)"

struct BatchLease {
  int slot = 0;
  int64_t item_id = 0;
  bool already_held = false;
};

// claim_batch's lease rows, and its last row's frontier (-1 when NULL).
std::vector<BatchLease> ClaimBatch(const std::string& url, int64_t project,
                                   const std::string& annotators, const std::string& counts,
                                   int64_t* frontier) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  auto r = tx.exec_params(
      "SELECT slot, item_id, already_held, frontier FROM labeling.claim_batch($1, $2::text[], "
      "$3::integer[], 300, NULL, 0)",
      project, annotators, counts);
  std::vector<BatchLease> out;
  for (size_t i = 0; i < r.size(); ++i) {
    if (r[i][0].is_null()) {
      EXPECT_EQ(i, r.size() - 1) << "the frontier row comes last";
      *frontier = r[i][3].is_null() ? -1 : r[i][3].as<int64_t>();
      continue;
    }
    out.push_back({r[i][0].as<int>(), r[i][1].is_null() ? 0 : r[i][1].as<int64_t>(),
                   r[i][2].is_null() ? false : r[i][2].as<bool>()});
  }
  return out;
}

TEST(LabelingBatch, ClaimBatchGivesEachAnnotatorItsOwnItemsOldestFirst) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto project = h.CreateProject({"a", "b"});
  auto ids = h.InsertItems(project.id(), 10);
  auto& stub = h.stub();
  // "held" holds the oldest item; "skipper" skipped the second.
  v1::ClaimNextResponse held;
  ASSERT_TRUE(Claim(stub, project.id(), "held", 1, &held).ok());
  ASSERT_EQ(held.items(0).lease().item_id(), ids[0]);
  v1::ClaimNextResponse skipped;
  ASSERT_TRUE(Claim(stub, project.id(), "skipper", 1, &skipped).ok());
  ASSERT_EQ(skipped.items(0).lease().item_id(), ids[1]);
  {
    v1::SkipRequest req;
    req.set_item_id(ids[1]);
    req.set_lease_token(skipped.items(0).lease().token());
    req.set_reason("unclear");
    v1::SkipResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub.Skip(&ctx, req, &resp).ok());
  }

  // held: its lease (a reload) and one more; skipper: one, not the item it skipped; new:
  // one. Oldest first: ids[1] to held, ids[2] to skipper, ids[3] to new.
  int64_t frontier = 0;
  auto leases = ClaimBatch(h.db_url(), project.id(), "{held,skipper,new}", "{2,1,1}", &frontier);
  ASSERT_EQ(leases.size(), 4u);
  EXPECT_EQ(leases[0].slot, 1);
  EXPECT_EQ(leases[0].item_id, ids[0]);
  EXPECT_TRUE(leases[0].already_held);
  std::map<int, std::vector<int64_t>> fresh;
  for (size_t i = 1; i < leases.size(); ++i) {
    EXPECT_FALSE(leases[i].already_held);
    fresh[leases[i].slot].push_back(leases[i].item_id);
  }
  EXPECT_EQ(fresh[1], std::vector<int64_t>{ids[1]});
  EXPECT_EQ(fresh[2], std::vector<int64_t>{ids[2]});
  EXPECT_EQ(fresh[3], std::vector<int64_t>{ids[3]});
  EXPECT_EQ(frontier, ids[1]);  // the first item neither labeled nor leased at the start

  // Without skips among the candidates: the i-th item to the i-th open place.
  leases = ClaimBatch(h.db_url(), project.id(), "{x,y}", "{1,2}", &frontier);
  ASSERT_EQ(leases.size(), 3u);
  EXPECT_EQ(leases[0].slot, 1);
  EXPECT_EQ(leases[0].item_id, ids[4]);
  EXPECT_EQ(leases[1].slot, 2);
  EXPECT_EQ(leases[1].item_id, ids[5]);
  EXPECT_EQ(leases[2].slot, 2);
  EXPECT_EQ(leases[2].item_id, ids[6]);

  // Asking for more than is left: what is left, in order; then nothing.
  leases = ClaimBatch(h.db_url(), project.id(), "{p,q}", "{2,2}", &frontier);
  ASSERT_EQ(leases.size(), 3u);
  EXPECT_EQ(leases[0].item_id, ids[7]);
  EXPECT_EQ(leases[1].item_id, ids[8]);
  EXPECT_EQ(leases[2].item_id, ids[9]);
  EXPECT_EQ(leases[2].slot, 2);
  leases = ClaimBatch(h.db_url(), project.id(), "{r,s}", "{1,1}", &frontier);
  EXPECT_TRUE(leases.empty());
  EXPECT_EQ(frontier, -1);

  // Every item under exactly one live lease, of the annotator the batch named.
  const std::string p = std::to_string(project.id());
  EXPECT_EQ(h.Count("SELECT count(DISTINCT item_id) FROM labeling.leases WHERE project_id = " + p),
            10);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.leases WHERE project_id = " + p), 10);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.leases WHERE annotator = 'held'"), 2);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.leases WHERE annotator = 'skipper' AND "
                    "item_id = " +
                    std::to_string(ids[1])),
            0);
}

TEST(LabelingBatch, ClaimBatchLeavesProjectsWithSeveralJudgementsToClaimItems) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto two = h.CreateProject({"a", "b"}, "single", 2);
  h.InsertItems(two.id(), 3);
  pqxx::connection c(h.db_url());
  pqxx::nontransaction tx(c);
  auto r = tx.exec_params(
      "SELECT slot, item_id FROM labeling.claim_batch($1, '{a,b}', '{1,1}', 300, NULL, 0)",
      two.id());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0][0].as<int>(), 0);
  EXPECT_TRUE(r[0][1].is_null());
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.leases"), 0);

  // A project that is not active: the batch fails as claim_items does.
  auto archived = h.CreateProject({"a"}, "single", 1, "archived");
  h.Count("UPDATE labeling.projects SET status = 'archived' WHERE id = " +
          std::to_string(archived.id()) + " RETURNING 1");
  try {
    tx.exec_params("SELECT * FROM labeling.claim_batch($1, '{a}', '{1}', 300, NULL, 0)",
                   archived.id());
    ADD_FAILURE() << "claim_batch on an archived project succeeded";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "LL412");
  }
}

TEST(LabelingBatch, SubmitBatchWritesOnlyWhatSubmitLabelWouldAccept) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto single = h.CreateProject({"a", "b"});
  auto multi = h.CreateProject({"x", "y", "z"}, "multi", 1, "multi");
  h.InsertItems(single.id(), 5);
  auto mids = h.InsertItems(multi.id(), 1);
  auto& stub = h.stub();
  std::vector<v1::Lease> leases;
  for (int i = 0; i < 5; ++i) {
    v1::ClaimNextResponse c;
    ASSERT_TRUE(Claim(stub, single.id(), "ann-" + std::to_string(i), 1, &c).ok());
    leases.push_back(c.items(0).lease());
  }
  v1::ClaimNextResponse mc;
  ASSERT_TRUE(Claim(stub, multi.id(), "ann-m", 1, &mc).ok());
  leases.push_back(mc.items(0).lease());

  // 1: fine; 2: a token that is not the lease's; 3: an unknown class; 4: fine, without
  // an annotator; 5: another annotator than the lease's; 6: multi-choice, classes out of
  // the schema's order.
  const std::string items =
      "{" + std::to_string(leases[0].item_id()) + "," + std::to_string(leases[1].item_id()) + "," +
      std::to_string(leases[2].item_id()) + "," + std::to_string(leases[3].item_id()) + "," +
      std::to_string(leases[4].item_id()) + "," + std::to_string(leases[5].item_id()) + "}";
  const std::string tokens = "{" + leases[0].token() + ",00000000-0000-4000-8000-000000000000," +
                             leases[2].token() + "," + leases[3].token() + "," + leases[4].token() +
                             "," + leases[5].token() + "}";
  pqxx::connection c(h.db_url());
  pqxx::nontransaction tx(c);
  auto r = tx.exec_params(
      "SELECT slot, project_id, annotator, classes::text, judgements, item_status, "
      "labeled_count FROM labeling.submit_batch($1::bigint[], $2::uuid[], "
      "'{ann-0,ann-1,ann-2,\"\",someone,ann-m}', '{1,2,3,4,5,6}', '{1,1,1,1,1,2}', "
      "'{a,b,zzz,b,a,z,x}', '{1.5,1,1,2,1,3}', 7000000000)",
      items, tokens);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0][0].as<int>(), 1);
  EXPECT_EQ(r[0][2].as<std::string>(), "ann-0");
  EXPECT_EQ(r[0][3].as<std::string>(), "{a}");
  EXPECT_EQ(r[0][5].as<std::string>(), "labeled");
  EXPECT_EQ(r[0][6].as<int64_t>(), 1);
  EXPECT_EQ(r[1][0].as<int>(), 4);
  EXPECT_EQ(r[1][2].as<std::string>(), "ann-3");
  EXPECT_EQ(r[1][6].as<int64_t>(), 2);  // as if after slot 1
  EXPECT_EQ(r[2][0].as<int>(), 6);
  EXPECT_EQ(r[2][1].as<int64_t>(), multi.id());
  EXPECT_EQ(r[2][3].as<std::string>(), "{x,z}");  // the schema's order
  EXPECT_EQ(r[2][6].as<int64_t>(), 1);

  const std::string p = std::to_string(single.id());
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.labels WHERE project_id = " + p), 2);
  EXPECT_EQ(h.Count("SELECT sum(labeled) FROM labeling.label_counts WHERE project_id = " + p), 2);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.items WHERE status = 'labeled' AND "
                    "project_id = " +
                    p),
            2);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.leases WHERE project_id = " + p), 3);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE outcome = 'submitted'"), 3);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.labels WHERE seconds_spent = 1.5 AND "
                    "item_id = " +
                    std::to_string(leases[0].item_id())),
            1);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.items WHERE consensus = '{x,z}' AND id = " +
                    std::to_string(mids[0])),
            1);

  // What the batch left is refused by the service with its reason.
  v1::SubmitLabelResponse out;
  auto st = Submit(stub, leases[2], {"zzz"}, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_TRUE(Submit(stub, leases[1], {"b"}, &out).ok());
  EXPECT_EQ(out.item_status(), "labeled");
  EXPECT_EQ(h.Count("SELECT sum(labeled) FROM labeling.label_counts WHERE project_id = " + p), 3);
}

// Migration 0008: leases churns (a row per claim+submit cycle), so ANALYZE of it samples a
// handful of live rows among thousands of dead ones, and plans built from that read every
// lease. With no column statistics on leases and key lookups only in the claim and submit
// functions, a claim on a table full of dead leases still reads a few pages.
TEST(LabelingBatch, ClaimsKeepKeyLookupsWhateverAnalyzeSawOfLeases) {
  LabelingHarness h;
  START_OR_SKIP(h);
  auto project = h.CreateProject({"a", "b"});
  auto ids = h.InsertItems(project.id(), 400);
  pqxx::connection c(h.db_url());
  {
    pqxx::work tx(c);
    // The first 300 items labeled, each after 50 leases that ended: 15,000 dead rows, as
    // between two autovacuums.
    tx.exec_params(
        "INSERT INTO labeling.leases (item_id, project_id, annotator, token, expires_at) "
        "SELECT i.id, i.project_id, 'ghost-' || g, gen_random_uuid(), now() + interval '5 min' "
        "FROM labeling.items i, generate_series(1, 50) g WHERE i.project_id = $1 AND i.id <= $2",
        project.id(), ids[299]);
    tx.exec("DELETE FROM labeling.leases WHERE annotator LIKE 'ghost-%'");
    tx.exec_params(
        "UPDATE labeling.items SET status = 'labeled', judgements = 1, consensus = '{a}' "
        "WHERE project_id = $1 AND id <= $2",
        project.id(), ids[299]);
    tx.commit();
  }
  v1::ClaimNextResponse live;
  ASSERT_TRUE(Claim(h.stub(), project.id(), "live", 2, &live).ok());
  pqxx::nontransaction tx(c);
  tx.exec("ANALYZE labeling.leases");
  EXPECT_EQ(h.Count("SELECT count(*) FROM pg_stats WHERE schemaname = 'labeling' "
                    "AND tablename = 'leases'"),
            0)
      << "ANALYZE gathered column statistics on leases";
  for (const char* fn : {"claim_items", "claim_batch", "submit_label", "submit_batch"}) {
    auto config = tx.exec_params1(
                        "SELECT array_to_string(proconfig, ',') FROM pg_proc p JOIN pg_namespace n "
                        "ON n.oid = p.pronamespace WHERE n.nspname = 'labeling' AND p.proname = $1",
                        std::string(fn))[0]
                      .as<std::string>();
    for (const char* setting : {"enable_bitmapscan=off", "enable_mergejoin=off",
                                "enable_material=off", "enable_seqscan=off"}) {
      EXPECT_NE(config.find(setting), std::string::npos) << fn << ": " << config;
    }
  }
  // One claim from the frontier, and the pages it read: the key lookups read tens; reading
  // every lease of the project would be hundreds (the dead rows fill about 150 pages). A
  // first claim on this connection plans the function's statements (catalog reads) and is
  // not counted.
  tx.exec_params("SELECT * FROM labeling.claim_items($1, 'warm-up', 1, 300, NULL, $2)",
                 project.id(), ids[300]);
  auto plan = tx.exec_params1(
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM "
                    "labeling.claim_items($1, 'probe', "
                    "1, 300, NULL, $2)",
                    project.id(), ids[300])[0]
                  .as<std::string>();
  auto blocks = [&plan](const std::string& key) {
    const auto at = plan.find("\"" + key + "\": ");
    return at == std::string::npos ? -1 : std::stol(plan.substr(at + key.size() + 4));
  };
  const long read = blocks("Shared Hit Blocks") + blocks("Shared Read Blocks");
  EXPECT_GE(read, 0) << plan;
  EXPECT_LT(read, 120) << plan;
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.leases WHERE annotator = 'probe'"), 1);
}

// 32 annotators through a service that runs one claim batch and one submit batch at a
// time, so nearly every call is combined with others: every item labeled exactly once,
// never two live leases on an item at once, every label the one its annotator sent.
TEST(LabelingBatch, RacingAnnotatorsThroughCombinedCallsLabelEveryItemOnce) {
  LabelingHarness h;
  START_OR_SKIP(h, {"--claim-batches", "1", "--submit-batches", "1", "--batch-max", "16"});
  auto project = h.CreateProject({"cat", "dog", "bird"});
  const int kItems = 900;
  h.InsertItems(project.id(), kItems);
  std::atomic<int> submitted{0};
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::thread> annotators;
  for (int a = 0; a < 32; ++a) {
    annotators.emplace_back([&, a] {
      auto stub = h.NewStub();
      const std::string who = "annotator-" + std::to_string(a);
      const std::vector<std::string> classes = {"cat", "dog", "bird"};
      for (int round = 0;; ++round) {
        v1::ClaimNextResponse claim;
        auto st = Claim(*stub, project.id(), who, 1 + (a + round) % 2, &claim);
        if (!st.ok()) {
          std::lock_guard lock(mu);
          if (first_error.empty()) first_error = "claim: " + st.error_message();
          ++failures;
          return;
        }
        if (claim.items_size() == 0) return;
        for (const auto& item : claim.items()) {
          // Now and then the same lease twice at once: exactly one of the two is stored.
          const bool twice = item.lease().item_id() % 17 == 0;
          std::atomic<int> ok{0};
          std::thread again;
          if (twice) {
            again = std::thread([&, lease = item.lease()] {
              auto own = h.NewStub();
              if (Submit(*own, lease, {classes[lease.item_id() % 3]}).ok()) ++ok;
            });
          }
          if (Submit(*stub, item.lease(), {classes[item.lease().item_id() % 3]}).ok()) ++ok;
          if (again.joinable()) again.join();
          if (ok.load() == 1) {
            ++submitted;
          } else {
            std::lock_guard lock(mu);
            if (first_error.empty()) first_error = "submits stored: " + std::to_string(ok.load());
            ++failures;
          }
        }
      }
    });
  }
  for (auto& t : annotators) t.join();
  ASSERT_EQ(failures.load(), 0) << first_error;
  EXPECT_EQ(submitted.load(), kItems);
  ExpectEveryItemLabeledOnce(h, project.id(), kItems);
}

}  // namespace
}  // namespace labelloop::e2e
