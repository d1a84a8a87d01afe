// Publishes bus events after their state change has committed, from a background
// thread, so a slow or absent Redis never delays a label submission. Events are a
// wake-up, never the only copy (listeners reconcile from PostgreSQL): when the queue is
// full the oldest events are dropped with a warning.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "common/redis/redis.hpp"

namespace labelloop::labeling {

class EventPublisher {
 public:
  explicit EventPublisher(redis::Client& redis, size_t max_queue = 100000);
  ~EventPublisher();
  EventPublisher(const EventPublisher&) = delete;
  EventPublisher& operator=(const EventPublisher&) = delete;

  void Publish(std::string channel, std::string payload);
  // Publishes what is queued (bounded wait), then stops the thread.
  void Stop();

 private:
  void Loop();

  redis::Client& redis_;
  size_t max_queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace labelloop::labeling
