// Live project events: one Redis subscriber for the whole gateway, fanning each bus
// message out to the watchers of its project (by the payload's "project_id"). A slow
// watcher loses its oldest events (bounded queue) rather than slowing the others.
//
// The subscriber runs only while someone watches: every claim+submit publishes a
// labels.submitted event, and reading and parsing those for no one cost ~6 % of the
// gateway's CPU under load. The first watcher subscribes (Watch returns once Redis has
// confirmed the subscription, so no event published after it is missed); the last one to
// leave drops the subscription.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

  // `subscribe_wait`: how long Watch waits for Redis to confirm a new subscription (when
  // Redis is down the watch starts anyway and hears events once it is back).
  explicit EventHub(size_t max_queue = 1000,
                    std::chrono::milliseconds subscribe_wait = std::chrono::seconds(2))
      : max_queue_(max_queue), subscribe_wait_(subscribe_wait) {}
  ~EventHub();
  // From now on, subscribes to Redis (reconnecting on its own) while someone watches.
  void Start(const redis::Endpoint& endpoint);
  // Ends every watch (drain on SIGTERM) and stops the subscriber.
  void Close();

  std::shared_ptr<Watcher> Watch(int64_t project_id, std::set<std::string> types);
  void Unwatch(const std::shared_ptr<Watcher>& watcher);
  // Hands one bus message to the watchers of its project (public for tests).
  void Dispatch(const std::string& channel, const std::string& payload);
  size_t watchers() const;
  // Whether the hub is subscribed to Redis (confirmed) right now.
  bool subscribed() const;

 private:
  // Under mu_: starts a subscriber, unless one runs or nobody could use it.
  void SubscribeLocked();
  // Under mu_: takes the subscriber out, to be stopped once mu_ is released.
  std::unique_ptr<redis::Subscriber> TakeSubscriberLocked();

  size_t max_queue_;
  std::chrono::milliseconds subscribe_wait_;
  mutable std::mutex mu_;
  std::multimap<int64_t, std::shared_ptr<Watcher>> watchers_;
  bool closed_ = false;
  std::optional<redis::Endpoint> endpoint_;
  std::unique_ptr<redis::Subscriber> subscriber_;  // while watchers_ is not empty
  uint64_t generation_ = 0;                        // of subscriber_
  bool subscribed_ = false;                        // subscriber_ has confirmed its channels
  std::condition_variable subscribed_cv_;
};

}  // namespace labelloop::gateway
