#include "services/labeling/event_publisher.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>
#include <vector>

namespace labelloop::labeling {

EventPublisher::EventPublisher(redis::Client& redis, size_t max_queue)
    : redis_(redis), max_queue_(max_queue), thread_([this] { Loop(); }) {}

EventPublisher::~EventPublisher() { Stop(); }

void EventPublisher::Publish(std::string channel, std::string payload) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    if (queue_.size() >= max_queue_) {
      queue_.pop_front();
      spdlog::warn("event queue full ({}): dropped the oldest event", max_queue_);
    }
    queue_.emplace_back(std::move(channel), std::move(payload));
  }
  cv_.notify_one();
}

void EventPublisher::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void EventPublisher::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    // Everything queued goes out in one pipelined write (a submit batch queues an event
    // per label at once).
    std::vector<std::pair<std::string, std::string>> batch;
    while (!queue_.empty() && batch.size() < 512) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    const bool stopping = stop_;
    lock.unlock();
    try {
      if (!redis_.PublishAll(batch)) {
        spdlog::warn("could not publish {} event(s) (Redis unreachable); listeners reconcile",
                     batch.size());
        if (stopping) {
          lock.lock();
          queue_.clear();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } catch (const std::exception& e) {
      spdlog::warn("publishing {} event(s) failed: {}", batch.size(), e.what());
    }
    lock.lock();
  }
}

}  // namespace labelloop::labeling
