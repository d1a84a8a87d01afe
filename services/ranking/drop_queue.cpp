#include "services/ranking/drop_queue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>

namespace labelloop::ranking {

namespace {
// A batch larger than this is confirmed in several queries (bounded query size).
constexpr size_t kMaxBatch = 10000;
}  // namespace

DropQueue::DropQueue(LabeledAmong labeled_among, Drop drop)
    : labeled_among_(std::move(labeled_among)), drop_(std::move(drop)) {}

DropQueue::~DropQueue() { Stop(); }

void DropQueue::Push(int64_t project_id, int64_t item_id) {
  {
    std::lock_guard lock(mu_);
    pending_.emplace_back(project_id, item_id);
  }
  cv_.notify_one();
}

size_t DropQueue::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

size_t DropQueue::Flush() {
  std::vector<std::pair<int64_t, int64_t>> batch;
  {
    std::lock_guard lock(mu_);
    const size_t n = std::min(pending_.size(), kMaxBatch);
    batch.assign(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  if (batch.empty()) return 0;
  std::vector<int64_t> ids;
  ids.reserve(batch.size());
  for (const auto& [project, item] : batch) ids.push_back(item);
  std::vector<int64_t> labeled = labeled_among_(ids);  // throws: the batch stays queued
  std::sort(labeled.begin(), labeled.end());
  size_t dropped = 0;
  for (const auto& [project, item] : batch) {
    if (std::binary_search(labeled.begin(), labeled.end(), item) && drop_(project, item)) {
      ++dropped;
    }
  }
  {
    std::lock_guard lock(mu_);
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(batch.size()));
  }
  return dropped;
}

void DropQueue::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void DropQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DropQueue::Run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      if (stop_) return;
    }
    try {
      Flush();
    } catch (const std::exception& e) {
      // The database is away: the batch stays queued; the reconcile after a reconnect
      // also re-checks the head of every order.
      spdlog::warn("ranking: confirming {} labeled items failed (retrying in 1 s): {}", pending(),
                   e.what());
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
    }
  }
}

}  // namespace labelloop::ranking
