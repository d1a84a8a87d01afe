// labelloop-labeling: The labeling service: projects, datasets, items, leases and labels.
#include "common/bootstrap/runtime.hpp"
#include "services/labeling/async_calls.hpp"
#include "services/labeling/domain/claims.hpp"
#include "services/labeling/event_publisher.hpp"
#include "services/labeling/ingest/ingest_service.hpp"
#include "services/labeling/ranking_client.hpp"
#include "services/labeling/service.hpp"
#include "services/labeling/storage/assignment_store.hpp"
#include "services/labeling/storage/project_store.hpp"
#include "services/labeling/storage/query_store.hpp"

namespace labelloop::labeling {
std::vector<migrate::Migration> Migrations();
}

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime(
      {.service = "labeling",
       .binary = "labelloop-labeling",
       .description = "The labeling service: projects, datasets, items, leases and labels.",
       .grpc_port = 50052,
       .metrics_port = 9092,
       .migrations = labeling::Migrations()});
  auto& s = runtime.settings();
  s.AddInt("lease-seconds", 300, "how long an annotator's claim on an item lasts", 1, 86400);
  s.AddString("ranking-addr", "127.0.0.1:50053",
              "ranking service address for the hand-out order (empty: oldest-first only)");
  s.AddInt("ranking-deadline-ms", 200, "longest wait for the ranking service's order", 1, 10000);
  s.AddInt("ranking-retry-ms", 2000,
           "after a ranking failure, hand out oldest-first this long before asking again", 0,
           600000);
  s.AddInt("claim-pool-size", 8,
           "PostgreSQL connections for ClaimNext alone, besides pg-pool-size, so that claims "
           "never wait behind submits for a connection",
           1, 1000);
  s.AddInt("claim-rescan-ms", 10000,
           "how often the oldest-first walk starts again from a project's first item (items "
           "committed late with ids below the frontier wait at most this long)",
           0, 3600000);
  s.AddInt("claim-batches", 2,
           "concurrent ClaimNext calls are combined into batches (one transaction each); "
           "how many batches run at a time (at most claim-pool-size are useful)",
           1, 1000);
  s.AddInt("submit-batches", 2,
           "concurrent SubmitLabel calls are combined into batches (one transaction each); "
           "how many batches run at a time",
           1, 1000);
  s.AddInt("batch-max", 64, "calls per claim or submit batch at most", 1, 10000);
  labeling::ingest::DeclareIngestSettings(s);
  if (auto code = runtime.Init(argc, argv)) return *code;

  labeling::storage::ProjectStore projects(runtime.pool());
  pg::PoolOptions claim_options = runtime.pool().options();
  claim_options.size = static_cast<int>(s.GetInt("claim-pool-size"));
  claim_options.application_name += "-claims";
  pg::Pool claim_pool(claim_options);
  labeling::storage::AssignmentStore assignments(
      runtime.pool(), claim_pool, static_cast<int>(s.GetInt("lease-seconds")),
      std::chrono::milliseconds(s.GetInt("claim-rescan-ms")),
      {static_cast<size_t>(s.GetInt("claim-batches")),
       static_cast<size_t>(s.GetInt("submit-batches")),
       static_cast<size_t>(s.GetInt("batch-max"))});
  labeling::storage::QueryStore queries(runtime.pool());
  labeling::RankingClient ranking(s.GetString("ranking-addr"),
                                  std::chrono::milliseconds(s.GetInt("ranking-deadline-ms")),
                                  std::chrono::milliseconds(s.GetInt("ranking-retry-ms")));
  // Ranked candidates for claim batches: asked before each batch's transaction, so the
  // transaction stays short; oldest-first when ranking has no order or fails.
  assignments.SetRanker([&ranking](int64_t project_id, int need) -> std::vector<int64_t> {
    if (auto order = ranking.NextCandidates(project_id, labeling::RankingRequestSize(need))) {
      return labeling::RankedCandidates(*order, {}, 500);
    }
    return {};
  });
  labeling::EventPublisher events(runtime.redis());
  labeling::LabelingServiceImpl service(runtime, {projects, assignments, queries, events});
  labeling::ingest::IngestServiceImpl ingest(runtime);
  // More pollers than batches can run at once, so a thread is always free to take calls.
  labeling::AsyncCalls async_calls(
      service, static_cast<int>(s.GetInt("claim-batches") + s.GetInt("submit-batches")) + 2,
      &runtime.metrics());
  runtime.SetRecordsOwnMetrics(&labeling::AsyncCalls::RecordsOwnMetrics);
  int code = runtime.Serve({&service, &ingest}, nullptr, {&async_calls});
  events.Stop();
  return code;
}
