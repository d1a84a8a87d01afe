#include "services/gateway/events.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/bus/channels.hpp"

namespace labelloop::gateway {

EventHub::Watcher::Next EventHub::Watcher::Wait(std::chrono::milliseconds timeout,
                                                ProjectEventData* out) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return closed_ || !queue_.empty(); });
  if (!queue_.empty()) {
    *out = std::move(queue_.front());
    queue_.pop_front();
    return Next::kEvent;
  }
  return closed_ ? Next::kClosed : Next::kTimeout;
}

int64_t EventHub::Watcher::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

std::vector<std::string> EventHub::Channels() {
  return {bus::kLabelsSubmitted, bus::kTrainingProgress, bus::kModelsReady, bus::kDownloadsReady};
}

EventHub::~EventHub() { Close(); }

void EventHub::Start(const redis::Endpoint& endpoint) {
  std::lock_guard lock(mu_);
  endpoint_ = endpoint;
  SubscribeLocked();  // for the watchers already there, if any
}

void EventHub::SubscribeLocked() {
  if (subscriber_ || !endpoint_ || closed_ || watchers_.empty()) return;
  const uint64_t generation = ++generation_;
  subscribed_ = false;
  subscriber_ = std::make_unique<redis::Subscriber>(
      *endpoint_, Channels(),
      [this](const std::string& channel, const std::string& payload) {
        Dispatch(channel, payload);
      },
      // After every (re)subscription; a subscriber being dropped is no longer current.
      [this, generation] {
        std::lock_guard lock(mu_);
        if (generation != generation_) return;
        subscribed_ = true;
        subscribed_cv_.notify_all();
      });
  subscriber_->Start();
}

std::unique_ptr<redis::Subscriber> EventHub::TakeSubscriberLocked() {
  ++generation_;
  subscribed_ = false;
  subscribed_cv_.notify_all();  // a Watch waiting for it (on Close) need not wait longer
  return std::move(subscriber_);
}

void EventHub::Close() {
  std::vector<std::shared_ptr<Watcher>> all;
  std::unique_ptr<redis::Subscriber> subscriber;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    for (auto& [id, w] : watchers_) all.push_back(w);
    watchers_.clear();
    subscriber = TakeSubscriberLocked();
  }
  for (auto& w : all) {
    std::lock_guard lock(w->mu_);
    w->closed_ = true;
    w->cv_.notify_all();
  }
  if (subscriber) subscriber->Stop();
}

std::shared_ptr<EventHub::Watcher> EventHub::Watch(int64_t project_id,
                                                   std::set<std::string> types) {
  auto w = std::make_shared<Watcher>();
  w->project_id_ = project_id;
  w->types_ = std::move(types);
  std::unique_lock lock(mu_);
  if (closed_) {
    w->closed_ = true;
    return w;
  }
  watchers_.emplace(project_id, w);
  SubscribeLocked();
  // Events published from now on reach the watcher once the subscription is confirmed.
  if (subscriber_ != nullptr) {
    subscribed_cv_.wait_for(lock, subscribe_wait_,
                            [this] { return subscribed_ || subscriber_ == nullptr; });
  }
  return w;
}

void EventHub::Unwatch(const std::shared_ptr<Watcher>& watcher) {
  std::unique_ptr<redis::Subscriber> idle;
  {
    std::lock_guard lock(mu_);
    auto [b, e] = watchers_.equal_range(watcher->project_id());
    for (auto it = b; it != e; ++it) {
      if (it->second == watcher) {
        watchers_.erase(it);
        break;
      }
    }
    if (watchers_.empty()) idle = TakeSubscriberLocked();
  }
  // Outside the lock: the subscriber's thread may be waiting for it (Dispatch).
  if (idle) idle->Stop();
}

bool EventHub::subscribed() const {
  std::lock_guard lock(mu_);
  return subscribed_;
}

void EventHub::Dispatch(const std::string& channel, const std::string& payload) {
  ProjectEventData ev;
  try {
    auto j = nlohmann::json::parse(payload);
    ev.project_id = j.value("project_id", int64_t{0});
    ev.type = j.value("type", channel);
  } catch (const std::exception& e) {
    spdlog::warn("bus message on {} is not JSON: {}", channel, e.what());
    return;
  }
  if (ev.project_id <= 0) return;
  ev.json = payload;
  ev.received_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::vector<std::shared_ptr<Watcher>> targets;
  {
    std::lock_guard lock(mu_);
    auto [b, e] = watchers_.equal_range(ev.project_id);
    for (auto it = b; it != e; ++it) targets.push_back(it->second);
  }
  for (auto& w : targets) {
    if (!w->types_.empty() && w->types_.count(ev.type) == 0) continue;
    std::lock_guard lock(w->mu_);
    if (w->queue_.size() >= max_queue_) {
      w->queue_.pop_front();
      ++w->dropped_;
    }
    w->queue_.push_back(ev);
    w->cv_.notify_one();
  }
}

size_t EventHub::watchers() const {
  std::lock_guard lock(mu_);
  return watchers_.size();
}

}  // namespace labelloop::gateway
