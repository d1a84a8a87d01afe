#include "services/dl_manager/builder.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/bus/channels.hpp"

namespace labelloop::dl_manager {

Builder::Builder(pg::Pool& pool, redis::Client& redis, metrics::Registry& metrics,
                 BuilderOptions options)
    : pool_(pool),
      redis_(redis),
      options_(std::move(options)),
      store_(pool, options_.worker_id),
      built_(metrics.GetCounter("labelloop_downloads_built_total", "archives built and stored")),
      failed_(metrics.GetCounter("labelloop_downloads_failed_total", "downloads set FAILED")),
      retried_(metrics.GetCounter("labelloop_downloads_retried_total",
                                  "build attempts that failed and will be retried")),
      lost_(metrics.GetCounter("labelloop_downloads_lease_lost_total",
                               "builds abandoned because their lease was lost")) {
  metrics.AddCallbackGauge("labelloop_downloads_building", "archive builds in progress",
                           [this] { return static_cast<double>(active_.load()); });
}

Builder::~Builder() { Stop(); }

void Builder::Start() {
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this, i] { WorkerLoop(i); });
  threads_.emplace_back([this] { SweepLoop(); });
}

void Builder::Wake() {
  {
    std::lock_guard lock(mu_);
    ++wake_generation_;
  }
  cv_.notify_all();
}

void Builder::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    for (auto* p : running_) p->abort.store(true);
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Builder::WorkerLoop(int index) {
  spdlog::info("download worker {} started", index);
  uint64_t seen = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      seen = wake_generation_;
    }
    bool claimed = false;
    try {
      claimed = ClaimAndBuild();
    } catch (const std::exception& e) {
      spdlog::warn("download worker {}: {}", index, e.what());
    }
    if (claimed) continue;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || wake_generation_ != seen; });
  }
}

void Builder::SweepLoop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(options_.sweep_ms),
                       [&] { return stopping_; })) {
        return;
      }
      ++wake_generation_;  // a sweep: every worker looks for claimable work
    }
    cv_.notify_all();
    if (options_.retention_seconds > 0) {
      try {
        int n = store_.DeleteOlderThan(options_.retention_seconds);
        if (n > 0) spdlog::info("retention: deleted {} downloads", n);
      } catch (const std::exception& e) {
        spdlog::warn("retention sweep failed: {}", e.what());
      }
    }
  }
}

bool Builder::ClaimAndBuild() {
  std::vector<DownloadRow> exhausted;
  auto claim = store_.ClaimNext(options_.lease_ms, &exhausted);
  for (const auto& row : exhausted) {
    failed_.Increment();
    spdlog::warn("download {} failed: {}", row.id, row.message);
    PublishReady(row.id, row.project_id, "FAILED");
  }
  if (!claim) return false;
  Build(*claim);
  return true;
}

void Builder::Build(const Claim& claim) {
  BuildProgress progress;
  {
    std::lock_guard lock(mu_);
    if (stopping_) progress.abort.store(true);
    running_.insert(&progress);
  }
  active_.fetch_add(1);
  spdlog::info("building download {} (project {}, model {}, attempt {}, build {})",
               claim.download_id, claim.project_id, claim.model_id, claim.attempt, claim.build_id);

  // Renews the lease and publishes progress until the build ends; a lost lease
  // aborts the build (another replica owns the download now).
  std::atomic<bool> lease_lost{false};
  std::mutex renew_mu;
  std::condition_variable renew_cv;
  bool done = false;
  const auto interval = std::chrono::milliseconds(
      std::max<int64_t>(1, std::min(options_.progress_ms, options_.lease_ms / 3)));
  std::thread renewer([&] {
    std::unique_lock lock(renew_mu);
    while (!renew_cv.wait_for(lock, interval, [&] { return done; })) {
      lock.unlock();
      try {
        if (!store_.Renew(claim, options_.lease_ms, progress.Phase(), progress.rows.load())) {
          lease_lost.store(true);
          progress.abort.store(true);
        }
      } catch (const std::exception& e) {
        spdlog::warn("download {}: lease renewal failed: {}", claim.download_id, e.what());
      }
      lock.lock();
    }
  });

  const std::string path = (std::filesystem::path(options_.work_dir) /
                            ("labelloop-download-" + std::to_string(claim.download_id) + "-" +
                             std::to_string(claim.build_id) + ".zip"))
                               .string();
  std::string outcome;
  try {
    ExportOptions export_options{.download_id = claim.download_id,
                                 .project_id = claim.project_id,
                                 .model_id = claim.model_id,
                                 .deflate_level = options_.deflate_level,
                                 .batch_rows = options_.batch_rows,
                                 .statement_timeout_ms = options_.statement_timeout_ms};
    ExportResult result = pool_.Run(
        [&](pqxx::connection& c) { return BuildArchive(c, export_options, path, &progress); });
    progress.SetPhase("storing");
    auto stored = store_.StoreArchive(claim,
                                      {.path = path,
                                       .chunk_bytes = options_.chunk_bytes,
                                       .entry_counts = result.entry_counts.dump(),
                                       .manifest = result.manifest.dump(),
                                       .rows = progress.rows.load()},
                                      [&] { return !progress.abort.load(); });
    if (stored) {
      outcome = "AVAILABLE";
      built_.Increment();
      spdlog::info("download {} AVAILABLE: {} bytes, sha256 {}, {} records", claim.download_id,
                   stored->size, stored->sha256, progress.rows.load());
    } else if (lease_lost.load()) {
      throw ExportAborted("lease lost");
    } else {
      throw ExportAborted("stopped");
    }
  } catch (const ExportAborted& e) {
    if (lease_lost.load()) {
      lost_.Increment();
      spdlog::warn("download {}: lease lost, another replica took over", claim.download_id);
    } else {
      spdlog::info("download {}: build stopped (drain), giving the claim back", claim.download_id);
      try {
        store_.Release(claim);
      } catch (const std::exception& re) {
        spdlog::warn("download {}: release failed ({}); its lease will expire", claim.download_id,
                     re.what());
      }
    }
  } catch (const std::exception& e) {
    // Missing project/model and unusable data are permanent; anything else (the
    // database went away, the disk filled up) is worth another attempt.
    const bool permanent = dynamic_cast<const ExportNotFound*>(&e) != nullptr ||
                           dynamic_cast<const ExportInvalid*>(&e) != nullptr;
    spdlog::warn("download {} attempt {} failed: {}", claim.download_id, claim.attempt, e.what());
    try {
      outcome = store_.Fail(claim, e.what(), !permanent);
      if (outcome == "FAILED") {
        failed_.Increment();
      } else if (outcome == "REQUESTED") {
        retried_.Increment();
        Wake();
      }
    } catch (const std::exception& fe) {
      spdlog::warn("download {}: recording the failure failed ({}); its lease will expire",
                   claim.download_id, fe.what());
    }
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);
  {
    std::lock_guard lock(renew_mu);
    done = true;
  }
  renew_cv.notify_all();
  renewer.join();
  {
    std::lock_guard lock(mu_);
    running_.erase(&progress);
  }
  active_.fetch_sub(1);
  if (outcome == "AVAILABLE" || outcome == "FAILED") {
    PublishReady(claim.download_id, claim.project_id, outcome);
  }
}

void Builder::PublishReady(int64_t download_id, int64_t project_id, const std::string& status) {
  nlohmann::json msg{{"type", "downloads.ready"},
                     {"version", 1},
                     {"download_id", download_id},
                     {"project_id", project_id},
                     {"status", status}};
  if (!redis_.Publish(bus::kDownloadsReady, msg.dump())) {
    spdlog::warn(
        "could not publish {} for download {} (Redis unreachable); the status is "
        "committed in PostgreSQL",
        bus::kDownloadsReady, download_id);
  }
}

}  // namespace labelloop::dl_manager
