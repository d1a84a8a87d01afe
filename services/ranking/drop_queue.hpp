// Items to drop from live orders on labels.submitted, confirmed against the database
// first. The bus carries no deployment identity: a message from another deployment that
// shares the Redis server (or a stray publisher) names some (project, item) of ours by
// coincidence, and dropping on its word alone would hide an unlabeled item from the
// order until the next rebuild. One worker thread confirms whatever has queued up with
// one query and drops only items that really are labeled.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace labelloop::ranking {

class DropQueue {
 public:
  // labeled_among(ids) returns those of ids that are labeled (may throw on a database
  // error: the batch is then kept and retried); drop(project, item) drops one item and
  // says whether it was in a live order.
  using LabeledAmong = std::function<std::vector<int64_t>(const std::vector<int64_t>&)>;
  using Drop = std::function<bool(int64_t project_id, int64_t item_id)>;

  DropQueue(LabeledAmong labeled_among, Drop drop);
  ~DropQueue();
  DropQueue(const DropQueue&) = delete;
  DropQueue& operator=(const DropQueue&) = delete;

  void Push(int64_t project_id, int64_t item_id);
  void Start();
  void Stop();

  // Confirms and drops everything queued now, on the caller's thread. Returns how many
  // items were dropped; throws what labeled_among throws (the batch stays queued).
  size_t Flush();

  size_t pending() const;

 private:
  void Run();

  LabeledAmong labeled_among_;
  Drop drop_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<int64_t, int64_t>> pending_;  // (project, item)
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace labelloop::ranking
