#include "common/redis/redis.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace labelloop::redis {
namespace {

timeval ToTimeval(int ms) {
  return timeval{.tv_sec = ms / 1000, .tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000)};
}

redisContext* Connect(const Endpoint& ep) {
  redisContext* ctx =
      redisConnectWithTimeout(ep.host.c_str(), ep.port, ToTimeval(ep.connect_timeout_ms));
  if (ctx == nullptr) return nullptr;
  if (ctx->err != 0) {
    redisFree(ctx);
    return nullptr;
  }
  redisSetTimeout(ctx, ToTimeval(ep.command_timeout_ms));
  redisEnableKeepAlive(ctx);
  return ctx;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// A command's arguments as hiredis takes them (binary-safe: with their lengths).
struct Argv {
  explicit Argv(const std::vector<std::string>& args) {
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  int size() const { return static_cast<int>(argv.size()); }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
};

Client::Reply ToReply(const redisReply& reply) {
  Client::Reply out;
  switch (reply.type) {
    case REDIS_REPLY_ERROR:
      out.str = std::string(reply.str, reply.len);
      return out;
    case REDIS_REPLY_NIL:
      out.ok = true;
      out.is_nil = true;
      return out;
    case REDIS_REPLY_INTEGER:
      out.ok = true;
      out.integer = reply.integer;
      return out;
    case REDIS_REPLY_ARRAY:
      out.ok = true;
      for (size_t i = 0; i < reply.elements; ++i) {
        const redisReply* e = reply.element[i];
        out.elements.emplace_back(e->str != nullptr ? std::string(e->str, e->len) : "");
      }
      return out;
    default:
      out.ok = true;
      if (reply.str != nullptr) out.str = std::string(reply.str, reply.len);
      return out;
  }
}

}  // namespace

Client::Client(Endpoint endpoint) : endpoint_(std::move(endpoint)) {}

Client::~Client() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

bool Client::EnsureConnected() {
  if (ctx_ != nullptr && ctx_->err == 0) return true;
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = Connect(endpoint_);
  return ctx_ != nullptr;
}

Client::Reply Client::Command(const std::vector<std::string>& args) {
  Argv command(args);
  std::lock_guard lock(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!EnsureConnected()) return {};
    ReplyPtr reply(static_cast<redisReply*>(
        redisCommandArgv(ctx_, command.size(), command.argv.data(), command.lens.data())));
    if (!reply) {
      // The connection broke (e.g. Redis restarted): reopen and try once more.
      redisFree(ctx_);
      ctx_ = nullptr;
      continue;
    }
    return ToReply(*reply);
  }
  return {};
}

std::optional<long long> Client::Publish(const std::string& channel, const std::string& message) {
  Reply r = Command({"PUBLISH", channel, message});
  if (!r.ok) return std::nullopt;
  return r.integer;
}

std::vector<Client::Reply> Client::Pipeline(const std::vector<std::vector<std::string>>& commands) {
  std::vector<Reply> out(commands.size());
  if (commands.empty()) return out;
  std::lock_guard lock(mu_);
  if (!EnsureConnected()) return out;
  for (const auto& args : commands) {
    Argv command(args);
    redisAppendCommandArgv(ctx_, command.size(), command.argv.data(), command.lens.data());
  }
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      // Broken connection: the rest stay !ok; reopened on the next call. Not re-sent,
      // since the commands may have run.
      redisFree(ctx_);
      ctx_ = nullptr;
      break;
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    out[i] = ToReply(*reply);
  }
  return out;
}

bool Client::PublishAll(const std::vector<std::pair<std::string, std::string>>& messages) {
  if (messages.empty()) return true;
  std::lock_guard lock(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!EnsureConnected()) return false;
    for (const auto& [channel, message] : messages) {
      const char* argv[] = {"PUBLISH", channel.data(), message.data()};
      const size_t lens[] = {7, channel.size(), message.size()};
      redisAppendCommandArgv(ctx_, 3, argv, lens);
    }
    bool broken = false;
    for (size_t i = 0; i < messages.size() && !broken; ++i) {
      void* raw = nullptr;
      broken = redisGetReply(ctx_, &raw) != REDIS_OK;
      ReplyPtr reply(static_cast<redisReply*>(raw));
    }
    if (!broken) return true;
    // The connection broke (e.g. Redis restarted): reopen and send them all once more.
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  return false;
}

bool Client::Ping() {
  Reply r = Command({"PING"});
  return r.ok && r.str == "PONG";
}

Subscriber::Subscriber(Endpoint endpoint, std::vector<std::string> channels,
                       MessageHandler on_message, std::function<void()> on_connected)
    : endpoint_(std::move(endpoint)),
      channels_(std::move(channels)),
      on_message_(std::move(on_message)),
      on_connected_(std::move(on_connected)) {}

Subscriber::~Subscriber() { Stop(); }

void Subscriber::Start() {
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Subscriber::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool Subscriber::ConnectAndSubscribe(redisContext** out) {
  redisContext* ctx = Connect(endpoint_);
  if (ctx == nullptr) return false;
  std::vector<const char*> argv = {"SUBSCRIBE"};
  for (const auto& c : channels_) argv.push_back(c.c_str());
  // One confirmation reply per channel; read them all before serving messages.
  ReplyPtr first(static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), nullptr)));
  bool ok = first != nullptr && first->type == REDIS_REPLY_ARRAY;
  for (size_t i = 1; ok && i < channels_.size(); ++i) {
    void* raw = nullptr;
    ok = redisGetReply(ctx, &raw) == REDIS_OK;
    ReplyPtr r(static_cast<redisReply*>(raw));
  }
  if (!ok) {
    redisFree(ctx);
    return false;
  }
  *out = ctx;
  return true;
}

void Subscriber::Loop() {
  redisContext* ctx = nullptr;
  int backoff_ms = 50;
  bool ever_connected = false;
  while (!stop_) {
    if (ctx == nullptr) {
      if (!ConnectAndSubscribe(&ctx)) {
        connected_ = false;
        for (int waited = 0; waited < backoff_ms && !stop_; waited += 50) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        backoff_ms = std::min(backoff_ms * 2, 2000);
        continue;
      }
      backoff_ms = 50;
      connected_ = true;
      if (ever_connected) ++reconnects_;
      ever_connected = true;
      spdlog::info("redis subscriber connected to {}:{} ({} channels)", endpoint_.host,
                   endpoint_.port, channels_.size());
      if (on_connected_) {
        try {
          on_connected_();
        } catch (const std::exception& e) {
          spdlog::error("subscriber on_connected handler failed: {}", e.what());
        }
      }
    }
    void* raw = nullptr;
    if (redisGetReplyFromReader(ctx, &raw) != REDIS_OK) {
      redisFree(ctx);
      ctx = nullptr;
      continue;
    }
    if (raw == nullptr) {
      // Nothing buffered: wait for the socket with a short timeout so Stop() is prompt.
      pollfd pfd{.fd = ctx->fd, .events = POLLIN, .revents = 0};
      int ready = poll(&pfd, 1, 200);
      if (ready > 0 && redisBufferRead(ctx) != REDIS_OK) {
        spdlog::warn("redis subscriber lost its connection: {}", ctx->errstr);
        connected_ = false;
        redisFree(ctx);
        ctx = nullptr;
      }
      continue;
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        std::string(reply->element[0]->str, reply->element[0]->len) == "message") {
      ++messages_;
      std::string channel(reply->element[1]->str, reply->element[1]->len);
      std::string payload(reply->element[2]->str, reply->element[2]->len);
      try {
        on_message_(channel, payload);
      } catch (const std::exception& e) {
        spdlog::error("handler for {} failed: {}", channel, e.what());
      }
    }
  }
  if (ctx != nullptr) redisFree(ctx);
  connected_ = false;
}

}  // namespace labelloop::redis
