// Redis through hiredis: a thread-safe publisher/command client that reconnects on
// demand, and a subscriber thread that reconnects and resubscribes on its own after
// Redis restarts, handing every message to a callback.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

struct redisContext;

namespace labelloop::redis {

struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 2000;
};

// A single connection guarded by a mutex; broken connections are reopened on the next
// call, and a call that fails on a stale connection is retried once on a fresh one.
class Client {
 public:
  explicit Client(Endpoint endpoint);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // PUBLISH; returns the number of subscribers that got it, or nullopt when Redis
  // cannot be reached.
  std::optional<long long> Publish(const std::string& channel, const std::string& message);
  // PUBLISH of each (channel, message), pipelined: one write and one read for all. True
  // when Redis answered them all; after a broken connection the whole batch is sent once
  // more, so a listener may see a message twice (events are wake-ups, never the only copy).
  bool PublishAll(const std::vector<std::pair<std::string, std::string>>& messages);
  bool Ping();
  // Runs a command given as separate arguments; returns the reply as integer (for
  // integer replies), string (status/bulk) or nullopt on error/nil.
  struct Reply {
    bool ok = false;
    bool is_nil = false;
    long long integer = 0;
    std::string str;
    std::vector<std::string> elements;
  };
  Reply Command(const std::vector<std::string>& args);
  // The commands pipelined: one write and one read for all; a reply per command, in
  // order. After a broken connection the rest are !ok and nothing is re-sent (they may
  // have run).
  std::vector<Reply> Pipeline(const std::vector<std::vector<std::string>>& commands);

 private:
  bool EnsureConnected();
  std::mutex mu_;
  Endpoint endpoint_;
  redisContext* ctx_ = nullptr;
};

// Subscribes to channels on a background thread. on_message(channel, payload) is
// called on that thread; on_connected() after every (re)subscription, so listeners
// can reconcile what they may have missed while disconnected.
class Subscriber {
 public:
  using MessageHandler = std::function<void(const std::string& channel, const std::string&)>;
  Subscriber(Endpoint endpoint, std::vector<std::string> channels, MessageHandler on_message,
             std::function<void()> on_connected = nullptr);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  void Start();
  void Stop();
  bool connected() const { return connected_.load(); }
  long long reconnects() const { return reconnects_.load(); }
  long long messages() const { return messages_.load(); }

 private:
  void Loop();
  bool ConnectAndSubscribe(redisContext** ctx);

  Endpoint endpoint_;
  std::vector<std::string> channels_;
  MessageHandler on_message_;
  std::function<void()> on_connected_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::atomic<long long> reconnects_{0};
  std::atomic<long long> messages_{0};
  std::thread thread_;
};

}  // namespace labelloop::redis
