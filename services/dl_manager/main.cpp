// labelloop-dl-manager: builds downloadable archives of a project's results.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/bootstrap/runtime.hpp"
#include "common/bus/channels.hpp"
#include "common/redis/redis.hpp"
#include "services/dl_manager/builder.hpp"
#include "services/dl_manager/service.hpp"

namespace labelloop::dl_manager {
std::vector<migrate::Migration> Migrations();
}  // namespace labelloop::dl_manager

namespace {

std::string DefaultWorkerId() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime(
      {.service = "dl_manager",
       .binary = "labelloop-dl-manager",
       .description =
           "The download manager: builds archives of labels, predictions and the classifier.",
       .grpc_port = 50055,
       .metrics_port = 9095,
       .migrations = dl_manager::Migrations()});
  auto& s = runtime.settings();
  s.AddInt("workers", 1, "archive builds run at once by this replica (0: serve the API only)", 0,
           64);
  s.AddInt("lease-ms", 30000, "how long a claimed build stays ours without renewal", 1000, 3600000);
  s.AddInt("progress-ms", 1000, "how often a build renews its lease and reports progress", 50,
           60000);
  s.AddInt("sweep-ms", 5000, "how often REQUESTED and expired builds are looked for", 50, 3600000);
  s.AddInt("retention-seconds", 7 * 24 * 3600,
           "archives finished longer ago than this are deleted (0: never)", 0, INT64_MAX);
  s.AddInt("max-attempts", 3, "build attempts before a download is FAILED", 1, 100);
  s.AddInt("deflate-level", 1, "zip deflate level (1 fastest .. 9 smallest)", 1, 9);
  s.AddInt("batch-rows", 5000, "rows fetched from PostgreSQL per cursor batch", 100, 1000000);
  s.AddInt("chunk-kib", 1024, "size of the stored archive chunks, KiB", 64, 65536);
  s.AddInt("build-statement-timeout-ms", 600000, "statement timeout inside the export transaction",
           1000, 86400000);
  s.AddString("work-dir", std::filesystem::temp_directory_path().string(),
              "folder for archives while they are built");
  s.AddString("worker-id", "", "name of this replica in claims (default host:pid)");
  if (auto code = runtime.Init(argc, argv)) return *code;

  const std::string worker_id =
      s.GetString("worker-id").empty() ? DefaultWorkerId() : s.GetString("worker-id");
  if (std::error_code ec; !std::filesystem::is_directory(s.GetString("work-dir"), ec)) {
    spdlog::critical("setting 'work-dir': {} is not a folder", s.GetString("work-dir"));
    return 2;
  }
  dl_manager::Builder builder(runtime.pool(), runtime.redis(), runtime.metrics(),
                              {.workers = static_cast<int>(s.GetInt("workers")),
                               .lease_ms = s.GetInt("lease-ms"),
                               .progress_ms = s.GetInt("progress-ms"),
                               .sweep_ms = s.GetInt("sweep-ms"),
                               .retention_seconds = s.GetInt("retention-seconds"),
                               .deflate_level = static_cast<int>(s.GetInt("deflate-level")),
                               .batch_rows = static_cast<int>(s.GetInt("batch-rows")),
                               .chunk_bytes = static_cast<int>(s.GetInt("chunk-kib")) * 1024,
                               .statement_timeout_ms = s.GetInt("build-statement-timeout-ms"),
                               .work_dir = s.GetString("work-dir"),
                               .worker_id = worker_id});

  auto& received =
      runtime.metrics().GetCounter("labelloop_bus_messages_received_total", "bus messages received",
                                   {{"channel", bus::kDownloadsRequested}});
  // The message only wakes the workers: what to build is always read from PostgreSQL.
  redis::Subscriber subscriber(
      runtime.redis_endpoint(), {bus::kDownloadsRequested},
      [&](const std::string& channel, const std::string& payload) {
        received.Increment();
        spdlog::info("received on {}: {}", channel, payload);
        builder.Wake();
      },
      [&] { builder.Wake(); });
  runtime.metrics().AddCallbackGauge("labelloop_bus_subscriber_connected",
                                     "1 while the Redis subscriber is connected",
                                     [&] { return subscriber.connected() ? 1.0 : 0.0; });

  dl_manager::DownloadStore store(runtime.pool(), worker_id);
  dl_manager::DlManagerServiceImpl service(
      runtime, store, {.max_attempts = static_cast<int>(s.GetInt("max-attempts"))},
      [&](const dl_manager::DownloadRow& row) {
        nlohmann::json msg{{"type", "downloads.requested"},
                           {"version", 1},
                           {"download_id", row.id},
                           {"project_id", row.project_id}};
        if (!runtime.redis().Publish(bus::kDownloadsRequested, msg.dump())) {
          spdlog::warn("could not publish {} (Redis unreachable); the sweep will find download {}",
                       bus::kDownloadsRequested, row.id);
        }
        builder.Wake();  // this replica may build it itself
      });
  spdlog::info("dl_manager worker {} ({} build workers)", worker_id, s.GetInt("workers"));
  builder.Start();  // the first pass is the start-up reconcile
  subscriber.Start();
  return runtime.Serve({&service}, [&] {
    subscriber.Stop();
    builder.Stop();
  });
}
