// Combines concurrent calls into batches. A caller queues its request; while fewer than
// `max_leaders` callers are running batches, it becomes one of them and runs what is
// queued (its own request among it, up to `max_batch` at a time) on its own thread; the
// other callers sleep until their result is in. A leader whose request is done passes the
// lead to the first caller still queued and returns, so no thread is woken only to hand
// work on: a call that arrives alone runs at once on its caller's thread, and under load
// each batch costs one round trip and one transaction for many calls.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace labelloop::labeling {

template <typename Request, typename Result>
class Combiner {
 public:
  struct Call {
    explicit Call(Request r) : request(std::move(r)) {}
    Request request;
    std::optional<Result> result;  // RunBatch fills it

   private:
    friend class Combiner;
    // The caller sleeps on its own mutex and condition variable, so a leader wakes each
    // caller of its batch without waking it into a lock the leader still holds.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;     // under mu
    bool lead = false;     // under mu: the lead was passed to this call's caller
    bool leading = false;  // under the combiner's mu_: its caller is a leader
  };
  // Sets the result of every call of the batch (in queue order). Must not throw.
  using RunBatch = std::function<void(const std::vector<Call*>& batch)>;

  Combiner(size_t max_leaders, size_t max_batch, RunBatch run)
      : max_leaders_(std::max<size_t>(1, max_leaders)),
        max_batch_(std::max<size_t>(1, max_batch)),
        run_(std::move(run)) {}
  Combiner(const Combiner&) = delete;
  Combiner& operator=(const Combiner&) = delete;

  Result Run(Request request) {
    Call call(std::move(request));
    {
      std::lock_guard lock(mu_);
      queue_.push_back(&call);
      if (leaders_ < max_leaders_) {
        ++leaders_;
        call.leading = true;
      }
    }
    bool leading = call.leading;  // set by this thread just now
    for (;;) {
      if (leading) Lead(call);
      std::unique_lock own(call.mu);
      call.cv.wait(own, [&] { return call.done || call.lead; });
      if (call.done) return std::move(*call.result);
      call.lead = false;
      leading = true;
    }
  }

 private:
  static bool IsDone(Call& call) {
    std::lock_guard own(call.mu);
    return call.done;
  }

  static void MarkDone(Call& call, bool wake) {
    std::lock_guard own(call.mu);
    call.done = true;
    // Last touch of a woken caller's Call: once its mutex is released it may return.
    if (wake) call.cv.notify_one();
  }

  // Runs batches until the leader's own call is done (this or another leader ran it) or
  // nothing is queued; then passes the lead to the first queued caller that is not a
  // leader, or gives it up.
  void Lead(Call& self) {
    for (;;) {
      std::vector<Call*> batch;
      {
        std::lock_guard lock(mu_);
        if (queue_.empty() || IsDone(self)) {
          self.leading = false;
          for (Call* c : queue_) {
            if (!c->leading) {
              c->leading = true;
              std::lock_guard own(c->mu);
              c->lead = true;
              c->cv.notify_one();
              return;
            }
          }
          --leaders_;
          return;
        }
        const size_t n = std::min(max_batch_, queue_.size());
        batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      run_(batch);
      for (Call* c : batch) MarkDone(*c, c != &self);
    }
  }

  const size_t max_leaders_;
  const size_t max_batch_;
  RunBatch run_;
  std::mutex mu_;
  std::deque<Call*> queue_;
  size_t leaders_ = 0;
};

}  // namespace labelloop::labeling
