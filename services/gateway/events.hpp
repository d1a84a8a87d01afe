// Live project events: one Redis subscriber for the whole gateway, fanning each bus
// message out to the watchers of its project (by the payload's "project_id"). A slow
// watcher loses its oldest events (bounded queue) rather than slowing the others.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/redis/redis.hpp"

namespace labelloop::gateway {

struct ProjectEventData {
  std::string type;
  int64_t project_id = 0;
  std::string json;
  int64_t received_at_ms = 0;
};

class EventHub {
 public:
  class Watcher {
   public:
    enum class Next { kEvent, kTimeout, kClosed };
    Next Wait(std::chrono::milliseconds timeout, ProjectEventData* out);
    int64_t project_id() const { return project_id_; }
    int64_t dropped() const;

   private:
    friend class EventHub;
    int64_t project_id_ = 0;
    std::set<std::string> types_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<ProjectEventData> queue_;
    bool closed_ = false;
    int64_t dropped_ = 0;
  };

  // The bus channels a watcher hears.
  static std::vector<std::string> Channels();

  explicit EventHub(size_t max_queue = 1000) : max_queue_(max_queue) {}
  ~EventHub();
  // Subscribes to Redis (reconnecting on its own).
  void Start(const redis::Endpoint& endpoint);
  // Ends every watch (drain on SIGTERM) and stops the subscriber.
  void Close();

  std::shared_ptr<Watcher> Watch(int64_t project_id, std::set<std::string> types);
  void Unwatch(const std::shared_ptr<Watcher>& watcher);
  // Hands one bus message to the watchers of its project (public for tests).
  void Dispatch(const std::string& channel, const std::string& payload);
  size_t watchers() const;
  bool connected() const { return subscriber_ && subscriber_->connected(); }

 private:
  size_t max_queue_;
  mutable std::mutex mu_;
  std::multimap<int64_t, std::shared_ptr<Watcher>> watchers_;
  bool closed_ = false;
  std::unique_ptr<redis::Subscriber> subscriber_;
};

}  // namespace labelloop::gateway
