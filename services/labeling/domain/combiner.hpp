// Combines concurrent calls into batches. A call is queued with the function that takes
// its result. While fewer than `max_leaders` threads are running batches, the thread that
// queues a call becomes one of them and runs what is queued (up to `max_batch` calls at a
// time) until the queue is empty, handing each call's result to its function; otherwise
// it returns at once and a running leader takes the call. So a call that arrives alone
// runs at once on its caller's thread, and under load each batch costs one round trip
// and one transaction for many calls, with no thread woken only to hand work on.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace labelloop::labeling {

template <typename Request, typename Result>
class Combiner {
 public:
  struct Call {
    Call(Request r, std::function<void(Result)> d) : request(std::move(r)), done(std::move(d)) {}
    Request request;
    std::optional<Result> result;  // RunBatch fills it
    std::function<void(Result)> done;
  };
  // Sets the result of every call of the batch (in queue order). Must not throw.
  using RunBatch = std::function<void(const std::vector<Call*>& batch)>;

  Combiner(size_t max_leaders, size_t max_batch, RunBatch run)
      : max_leaders_(std::max<size_t>(1, max_leaders)),
        max_batch_(std::max<size_t>(1, max_batch)),
        run_(std::move(run)) {}
  Combiner(const Combiner&) = delete;
  Combiner& operator=(const Combiner&) = delete;

  // Queues the call; `done` gets its result exactly once, on whichever thread ran its
  // batch (this one or a running leader's). `done` must not throw.
  void Submit(Request request, std::function<void(Result)> done) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::make_unique<Call>(std::move(request), std::move(done)));
      if (leaders_ >= max_leaders_) return;
      ++leaders_;
    }
    Lead();
  }

  // Submit, then wait for the result (for callers with a thread to spare).
  Result Run(Request request) {
    std::promise<Result> promise;
    auto future = promise.get_future();
    Submit(std::move(request), [&promise](Result r) { promise.set_value(std::move(r)); });
    return future.get();
  }

 private:
  void Lead() {
    for (;;) {
      std::vector<std::unique_ptr<Call>> owned;
      {
        std::lock_guard lock(mu_);
        if (queue_.empty()) {
          --leaders_;
          return;
        }
        const size_t n = std::min(max_batch_, queue_.size());
        for (size_t i = 0; i < n; ++i) {
          owned.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      std::vector<Call*> batch;
      batch.reserve(owned.size());
      for (auto& c : owned) batch.push_back(c.get());
      run_(batch);
      for (auto& c : owned) c->done(std::move(*c->result));
    }
  }

  const size_t max_leaders_;
  const size_t max_batch_;
  RunBatch run_;
  std::mutex mu_;
  std::deque<std::unique_ptr<Call>> queue_;
  size_t leaders_ = 0;
};

}  // namespace labelloop::labeling
