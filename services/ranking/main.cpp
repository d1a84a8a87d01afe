// labelloop-ranking: The uncertainty-ranking service: scores and the order items are labeled in.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/bootstrap/runtime.hpp"
#include "common/bus/channels.hpp"
#include "common/redis/redis.hpp"
#include "services/ranking/builder.hpp"
#include "services/ranking/drop_queue.hpp"
#include "services/ranking/ranker.hpp"
#include "services/ranking/service.hpp"
#include "services/ranking/storage/store.hpp"

namespace labelloop::ranking {
std::vector<migrate::Migration> Migrations();
// Ranking's own channel: {"type":"ranking.strategy","version":1,"project_id":1}; tells the
// other replicas to pick up a changed strategy now instead of on the next reconcile.
inline constexpr const char* kStrategyChannel = "labelloop.ranking.strategy";
}  // namespace labelloop::ranking

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime(
      {.service = "ranking",
       .binary = "labelloop-ranking",
       .description = "The uncertainty-ranking service: scores and the order items are labeled in.",
       .grpc_port = 50053,
       .metrics_port = 9093,
       .migrations = ranking::Migrations()});
  auto& s = runtime.settings();
  s.AddInt("reconcile-interval-ms", 5000,
           "how often every project's order is checked against PostgreSQL (latest ready "
           "model, strategy, labeled items at the head)",
           50, 3600000);
  s.AddInt("random-seed", 0, "base seed of the random strategy (same on every replica)", 0,
           (int64_t{1} << 62));
  s.AddInt("score-threads", 2, "threads that score a new order", 1, 64);
  s.AddInt("load-connections", 2,
           "parallel COPYs (PostgreSQL connections) that load a model's predictions", 1, 64);
  s.AddInt("load-rows-per-connection", 50000, "smallest item id range one of those COPYs takes", 1,
           int64_t{1} << 40);
  s.AddBool("persist-scores", true,
            "store each new order's scores in ranking.score_chunks (restart without rescoring)");
  s.AddInt("diverse-pool-factor", 10,
           "batch_diverse picks n items from the top n x factor candidates", 1, 1000);
  s.AddInt("diverse-pool-max", 2000, "largest batch_diverse candidate pool", 1, 100000);
  if (auto code = runtime.Init(argc, argv)) return *code;

  ranking::Ranker ranker;
  ranking::storage::Store store(runtime.pool(), s.GetString("pg-url"));
  ranking::Builder builder(
      store, ranker,
      {.random_seed = static_cast<uint64_t>(s.GetInt("random-seed")),
       .threads = static_cast<int>(s.GetInt("score-threads")),
       .load_connections = static_cast<int>(s.GetInt("load-connections")),
       .load_rows_per_connection = s.GetInt("load-rows-per-connection"),
       .reconcile_interval = std::chrono::milliseconds(s.GetInt("reconcile-interval-ms")),
       .persist_scores = s.GetBool("persist-scores")},
      runtime.metrics());
  auto& drops = runtime.metrics().GetCounter("labelloop_ranking_items_dropped_total",
                                             "items dropped from live orders on labels.submitted");
  auto& bad_messages = runtime.metrics().GetCounter("labelloop_bus_messages_malformed_total",
                                                    "bus messages that could not be parsed");

  ranking::DropQueue drop_queue(
      [&](const std::vector<int64_t>& ids) { return store.LabeledAmong(ids); },
      [&](int64_t project, int64_t item) {
        const bool dropped = ranker.Drop(project, item);
        if (dropped) drops.Increment();
        return dropped;
      });

  redis::Subscriber subscriber(
      runtime.redis_endpoint(),
      {bus::kModelsReady, bus::kLabelsSubmitted, ranking::kStrategyChannel},
      [&](const std::string& channel, const std::string& payload) {
        try {
          auto j = nlohmann::json::parse(payload);
          const int64_t project = j.at("project_id").get<int64_t>();
          if (channel == bus::kLabelsSubmitted) {
            // With several judgements per item, it stays in the order until it is labeled.
            if (j.value("item_labeled", true))
              drop_queue.Push(project, j.at("item_id").get<int64_t>());
          } else {
            builder.RequestRefresh(project);
          }
        } catch (const std::exception& e) {
          bad_messages.Increment();
          spdlog::warn("ignoring a malformed message on {}: {} ({})", channel, payload, e.what());
        }
      },
      [&] { builder.RequestReconcile(); });
  runtime.metrics().AddCallbackGauge("labelloop_bus_subscriber_connected",
                                     "1 while the Redis subscriber is connected",
                                     [&] { return subscriber.connected() ? 1.0 : 0.0; });
  drop_queue.Start();
  subscriber.Start();
  builder.Start();

  ranking::RankingServiceImpl service(
      runtime, ranker, store, builder,
      {.diverse_pool_factor = static_cast<size_t>(s.GetInt("diverse-pool-factor")),
       .diverse_pool_max = static_cast<size_t>(s.GetInt("diverse-pool-max"))},
      [&](int64_t project_id) {
        nlohmann::json m = {
            {"type", "ranking.strategy"}, {"version", 1}, {"project_id", project_id}};
        runtime.redis().Publish(ranking::kStrategyChannel, m.dump());
      });
  return runtime.Serve({&service}, [&] {
    subscriber.Stop();
    drop_queue.Stop();
    builder.Stop();
  });
}
