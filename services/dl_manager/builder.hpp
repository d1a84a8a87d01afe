// The build workers: claim a REQUESTED download (or one whose builder's lease
// expired), build its archive while renewing the lease and reporting progress, store
// it, mark it AVAILABLE and publish labelloop.downloads.ready. Woken by bus messages,
// at start-up and by a periodic sweep (which also applies the retention), so a
// message lost while no replica listened delays a build but never loses it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics/metrics.hpp"
#include "common/pg/pool.hpp"
#include "common/redis/redis.hpp"
#include "services/dl_manager/storage/download_store.hpp"
#include "services/dl_manager/storage/export.hpp"

namespace labelloop::dl_manager {

struct BuilderOptions {
  int workers = 1;
  int64_t lease_ms = 30000;
  int64_t progress_ms = 1000;  // lease renewal and progress update interval (capped at lease/3)
  int64_t sweep_ms = 5000;
  int64_t retention_seconds = 7 * 24 * 3600;  // 0: keep forever
  int deflate_level = 1;
  int batch_rows = 5000;
  int chunk_bytes = 1 << 20;
  int64_t statement_timeout_ms = 600000;
  std::string work_dir;  // where archives are written before they are stored
  std::string worker_id;
};

class Builder {
 public:
  Builder(pg::Pool& pool, redis::Client& redis, metrics::Registry& metrics, BuilderOptions options);
  ~Builder();
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  void Start();
  // Something may be claimable now (a bus message, a reconnect).
  void Wake();
  // Drain: no new claims; builds in progress stop and give their claim back. Joins.
  void Stop();

  int64_t builds_in_progress() const { return active_.load(); }

 private:
  void WorkerLoop(int index);
  void SweepLoop();
  // Returns true when it claimed something (so the caller looks for more at once).
  bool ClaimAndBuild();
  void Build(const Claim& claim);
  void PublishReady(int64_t download_id, int64_t project_id, const std::string& status);

  pg::Pool& pool_;
  redis::Client& redis_;
  BuilderOptions options_;
  DownloadStore store_;
  metrics::Counter& built_;
  metrics::Counter& failed_;
  metrics::Counter& retried_;
  metrics::Counter& lost_;
  std::atomic<int64_t> active_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t wake_generation_ = 0;
  bool stopping_ = false;
  std::set<BuildProgress*> running_;  // guarded by mu_, to abort them on Stop
  std::vector<std::thread> threads_;
};

}  // namespace labelloop::dl_manager
