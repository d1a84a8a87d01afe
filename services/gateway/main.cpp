// labelloop-gateway: the public door — gRPC and HTTP/JSON, auth, live events.
//
//   labelloop-gateway [flags]                  serve
//   labelloop-gateway bootstrap-admin [flags]  create the first admin from the settings
//                                              bootstrap-admin-user/-password, then exit
#include <absl/synchronization/mutex.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>
#include <sstream>

#include "common/bootstrap/runtime.hpp"
#include "services/gateway/events.hpp"
#include "services/gateway/gate.hpp"
#include "services/gateway/http_api.hpp"
#include "services/gateway/password.hpp"
#include "services/gateway/proxy.hpp"
#include "services/gateway/service.hpp"
#include "services/gateway/storage/redis_counter.hpp"
#include "services/gateway/storage/store.hpp"

namespace labelloop::gateway {
std::vector<migrate::Migration> Migrations();

namespace {

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void DeclareSettings(config::Settings& s) {
  s.AddString("http-host", "0.0.0.0", "address the HTTP/JSON API binds");
  s.AddInt("http-port", 8080, "HTTP/JSON API port (0 picks a free one)", 0, 65535);
  s.AddInt("http-threads", 128,
           "HTTP workers for event streams, uploads and GatewayService calls (one each while it "
           "lasts); keep-alive connections and proxied unary calls need none",
           4, 4096);
  s.AddInt("http-io-threads", 1,
           "HTTP event-loop threads reading requests and starting proxied calls, each for "
           "any number of connections (more only when one is busy: they wake each other)",
           1, 64);
  s.AddInt("http-stall-timeout-seconds", 60,
           "an HTTP request body read or answer write with no progress this long closes the "
           "connection (a stalled client holds no worker for ever)",
           1, 86400);
  s.AddString("cors-origins", "",
              "comma-separated origins allowed to call the HTTP API from a browser ('*' = any)");
  s.AddInt("proxy-threads", 1,
           "threads proxying gRPC calls to the internal services (the HTTP API's calls "
           "complete on their first queue too); they never wait on I/O (see "
           "proxy-blocking-threads), so one per completion queue is best",
           1, 64);
  s.AddInt("proxy-queues", 1, "completion queues of the proxy threads (a call stays on one)", 1,
           64);
  s.AddInt("proxy-blocking-threads", 8,
           "threads for the proxy's lookups that wait on I/O ("
           "token, API key and membership cache misses, project lookups)",
           1, 1024);
  s.AddString("labeling-addr", "127.0.0.1:50052", "labeling service gRPC address");
  s.AddString("ranking-addr", "127.0.0.1:50053", "ranking service gRPC address");
  s.AddString("training-addr", "127.0.0.1:50054", "training service gRPC address");
  s.AddString("dl-manager-addr", "127.0.0.1:50055", "dl_manager service gRPC address");
  s.AddInt("internal-deadline-ms", 5000, "deadline of every unary call to an internal service", 50,
           600000);
  s.AddInt("stream-deadline-ms", 3600000, "deadline of streaming calls to internal services", 1000,
           86400000);
  s.AddSecret("jwt-secret", "",
              "HS256 signing key of access tokens (at least 32 characters); required in "
              "production, random per process in development");
  s.AddInt("access-token-ttl-seconds", 900, "lifetime of access tokens", 10, 86400);
  s.AddInt("refresh-token-ttl-seconds", 30 * 86400, "lifetime of refresh tokens", 60, 365 * 86400);
  s.AddInt("rate-limit-user", 1200, "calls per window per user (0 = unlimited)", 0, 100000000);
  s.AddInt("rate-limit-api-key", 6000, "calls per window per API key (0 = unlimited)", 0,
           100000000);
  s.AddString("redis-key-prefix", "labelloop:",
              "prefix of the rate-limit keys in Redis (lets deployments share one Redis)");
  s.AddInt("rate-limit-window-seconds", 60, "rate limit window", 1, 86400);
  s.AddInt("rate-limit-flush-ms", 50,
           "calls are counted in memory and added to the shared counts in Redis this often; "
           "with several replicas, each may let through what the others counted in one "
           "such interval before it learns of them",
           1, 60000);
  s.AddInt("login-attempts", 10, "login attempts per username and client address per window", 1,
           100000);
  s.AddInt("login-window-seconds", 300, "login attempt window", 1, 86400);
  s.AddInt("auth-cache-ms", 1000,
           "how long API keys and memberships are cached (changes through this replica apply "
           "at once)",
           0, 600000);
  s.AddString("bootstrap-admin-user", "", "first admin: created at start when missing");
  s.AddSecret("bootstrap-admin-password", "", "first admin's password");
}

int EnsureBootstrapAdmin(bootstrap::Runtime& runtime, Store& store, bool required) {
  const auto user = runtime.settings().GetString("bootstrap-admin-user");
  const auto password = runtime.settings().GetString("bootstrap-admin-password");
  if (user.empty() && password.empty()) {
    if (!required) return 0;
    std::cerr << "bootstrap-admin: give --bootstrap-admin-user and --bootstrap-admin-password "
                 "(or LABELLOOP_BOOTSTRAP_ADMIN_USER/_PASSWORD)\n";
    return 2;
  }
  if (auto e = CheckUsername(user); !e.empty()) {
    spdlog::critical("setting 'bootstrap-admin-user': {}", e);
    return 2;
  }
  if (auto e = CheckNewPassword(password); !e.empty()) {
    spdlog::critical("setting 'bootstrap-admin-password': {}", e);
    return 2;
  }
  try {
    if (auto existing = store.FindUserByName(user)) {
      spdlog::info("bootstrap admin '{}' already exists (id {})", user, existing->id);
      return 0;
    }
    auto created = store.CreateUser(user, HashPassword(password), Role::kAdmin);
    if (created) spdlog::warn("bootstrap admin '{}' created (id {})", user, created->id);
  } catch (const std::exception& e) {
    spdlog::critical("cannot create the bootstrap admin: {}", e.what());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace labelloop::gateway

int main(int argc, char** argv) {
  using namespace labelloop;
  using namespace labelloop::gateway;
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detector on:
  // every lock inside gRPC then updates a global lock graph (~4 % of the gateway's CPU
  // per proxied call). The detector is a debugging aid; gRPC's own builds turn it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // `bootstrap-admin` subcommand: the same settings, no server (and no metrics port).
  bool bootstrap_only = false;
  std::vector<char*> args(argv, argv + argc);
  std::string metrics_flag = "--metrics-port=0";
  if (argc > 1 && std::strcmp(argv[1], "bootstrap-admin") == 0) {
    bootstrap_only = true;
    args.erase(args.begin() + 1);
    args.insert(args.begin() + 1, metrics_flag.data());
  }
  bootstrap::Runtime runtime(
      {.service = "gateway",
       .binary = "labelloop-gateway",
       .description = "The gateway: the public gRPC and HTTP/JSON API, authentication and "
                      "authorization.",
       .grpc_port = 50051,
       .metrics_port = 9091,
       .migrations = gateway::Migrations()});
  DeclareSettings(runtime.settings());
  if (auto code = runtime.Init(static_cast<int>(args.size()), args.data())) return *code;
  auto& settings = runtime.settings();

  Store store(runtime.pool());
  if (bootstrap_only) return EnsureBootstrapAdmin(runtime, store, true);

  std::string secret = settings.GetString("jwt-secret");
  if (secret.empty()) {
    if (!runtime.development()) {
      spdlog::critical(
          "setting 'jwt-secret' is required when environment=production "
          "(LABELLOOP_JWT_SECRET, at least 32 characters)");
      return 2;
    }
    secret = RandomToken(32);
    spdlog::warn(
        "no 'jwt-secret': signing with a random key; tokens die with this process and "
        "replicas will not accept each other's tokens (development only)");
  } else if (secret.size() < 32) {
    spdlog::critical("setting 'jwt-secret': at least 32 characters");
    return 2;
  }
  if (int code = EnsureBootstrapAdmin(runtime, store, false); code != 0) return code;

  TokenSigner signer(secret, "labelloop");
  RedisWindowCounter counter(runtime.redis_endpoint(), 4, settings.GetString("redis-key-prefix"));
  auto unix_now = [] { return static_cast<int64_t>(std::time(nullptr)); };
  // Login attempts: counted in Redis on each attempt, exact across replicas. Every other
  // call: counted in memory and added to Redis in batches, so no call waits on Redis.
  StoreRateLimiter login_limiter(counter, unix_now);
  BatchedRateLimiter call_limiter(
      counter, unix_now, std::chrono::milliseconds(settings.GetInt("rate-limit-flush-ms")));
  Authenticator authn(signer, store, settings.GetInt("auth-cache-ms"));
  GateOptions gate_options{
      .backend_addresses = {{"labeling", settings.GetString("labeling-addr")},
                            {"ranking", settings.GetString("ranking-addr")},
                            {"training", settings.GetString("training-addr")},
                            {"dl_manager", settings.GetString("dl-manager-addr")}},
      .max_message_bytes = static_cast<int>(settings.GetInt("max-message-bytes")),
      .deadline_ms = settings.GetInt("internal-deadline-ms"),
      .stream_deadline_ms = settings.GetInt("stream-deadline-ms"),
      .user_rate_limit = settings.GetInt("rate-limit-user"),
      .api_key_rate_limit = settings.GetInt("rate-limit-api-key"),
      .rate_window_seconds = settings.GetInt("rate-limit-window-seconds")};
  Gate gate(gate_options, authn, store, call_limiter);
  for (const auto& s : gate.skipped()) spdlog::info("not exposed: {}", s);
  spdlog::info("{} internal methods exposed", gate.routes().size());

  EventHub hub;
  hub.Start(runtime.redis_endpoint());

  const std::string internal_secret = RandomToken(24);
  AuthSettings auth_settings{.access_ttl_seconds = settings.GetInt("access-token-ttl-seconds"),
                             .refresh_ttl_seconds = settings.GetInt("refresh-token-ttl-seconds"),
                             .login_attempts = settings.GetInt("login-attempts"),
                             .login_window_seconds = settings.GetInt("login-window-seconds"),
                             .internal_secret = internal_secret};
  auto fill_info = [&runtime](v1::ServiceInfo* info) { runtime.FillInfo(info); };
  GatewayServiceImpl service(fill_info, store, signer, gate, login_limiter, hub, auth_settings);
  ProxyService proxy(gate, &runtime.metrics(), static_cast<int>(settings.GetInt("proxy-queues")),
                     static_cast<int>(settings.GetInt("proxy-threads")),
                     static_cast<int>(settings.GetInt("proxy-blocking-threads")));
  // The proxy counts its calls itself: a server interceptor costs it ~20-40 us per call.
  runtime.SetRecordsOwnMetrics(
      [&gate](const std::string& method) { return gate.Find(method) != nullptr; });

  HttpOptions http_options{
      .host = settings.GetString("http-host"),
      .port = static_cast<int>(settings.GetInt("http-port")),
      .threads = static_cast<int>(settings.GetInt("http-threads")),
      .io_threads = static_cast<int>(settings.GetInt("http-io-threads")),
      .cors_origins = SplitList(settings.GetString("cors-origins")),
      .internal_secret = internal_secret,
      .stall_timeout_seconds = static_cast<int>(settings.GetInt("http-stall-timeout-seconds"))};
  HttpApi http(
      http_options, gate, hub, [&runtime] { return runtime.grpc_port(); },
      settings.GetString("grpc-host"),
      [&runtime] { return runtime.pool().Ping() && runtime.redis().Ping(); }, fill_info);
  if (!http.Listen()) {
    spdlog::critical("cannot bind the HTTP port (setting 'http-port' = {})",
                     settings.GetInt("http-port"));
    return 1;
  }
  spdlog::info("HTTP/JSON on http://{}:{}", http_options.host, http.port());
  // HTTP serves once the proxy polls its queue: the HTTP calls to the internal services
  // complete on it too, so that a single thread polls gRPC (see completion_tag.hpp).
  proxy.OnStart([&http, &proxy] { http.Serve(proxy.queue()); });

  // The proxy's queues are added before the server is built, polled once it runs, and
  // drained between its shutdown and its destruction (grpc_server::AsyncMethods).
  int code = runtime.Serve({&service},
                           [&] {
                             hub.Close();
                             http.Stop();
                           },
                           {&proxy});
  http.Stop();
  hub.Close();
  return code;
}
