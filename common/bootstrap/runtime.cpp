#include "common/bootstrap/runtime.hpp"

#include <absl/synchronization/mutex.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <thread>

#include "common/log/log.hpp"

namespace labelloop::bootstrap {

const char* Version() { return LABELLOOP_VERSION; }
const char* Build() { return LABELLOOP_BUILD; }

Runtime::Runtime(ProcessSpec spec)
    : spec_(std::move(spec)),
      settings_(spec_.binary, spec_.description),
      started_at_(std::chrono::system_clock::now()),
      started_steady_(std::chrono::steady_clock::now()) {
  auto& s = settings_;
  s.AddString("grpc-host", "0.0.0.0", "address the gRPC server binds");
  s.AddInt("grpc-port", spec_.grpc_port, "gRPC port (0 picks a free one)", 0, 65535);
  s.AddString("metrics-host", "0.0.0.0", "address the Prometheus /metrics endpoint binds");
  s.AddInt("metrics-port", spec_.metrics_port, "Prometheus /metrics HTTP port (0 picks one)", 0,
           65535);
  s.AddString("pg-url", "postgresql://labelloop@127.0.0.1:55432/labelloop",
              "PostgreSQL connection URL (libpq syntax)");
  s.AddInt("pg-pool-size", 8, "PostgreSQL connections in the pool", 1, 1000);
  s.AddInt("pg-statement-timeout-ms", 30000, "statement timeout for every query", 1, 86400000);
  s.AddInt("pg-acquire-timeout-ms", 5000, "longest wait for a free pooled connection", 1, 600000);
  s.AddString("redis-host", "127.0.0.1", "Redis host");
  s.AddInt("redis-port", 56379, "Redis port", 1, 65535);
  s.AddChoice("log-level", "info", {"trace", "debug", "info", "warn", "error", "critical", "off"},
              "log level");
  s.AddChoice("log-format", "plain", {"plain", "json"}, "log line format");
  s.AddChoice("environment", "development", {"development", "production"},
              "production refuses insecure defaults");
  s.AddInt("shutdown-grace-ms", 10000, "time in-flight calls get to finish on SIGTERM", 0, 600000);
  s.AddInt("max-message-bytes", 64 << 20, "largest gRPC message accepted or sent", 1024, 1 << 30);
  s.AddInt("keepalive-ms", 30000, "gRPC keepalive ping interval", 1000, 3600000);
  s.AddInt("health-interval-ms", 1000, "how often PostgreSQL and Redis are checked", 50, 60000);
  s.AddInt("startup-timeout-ms", 30000, "how long start-up waits for PostgreSQL", 0, 600000);
}

Runtime::~Runtime() = default;

bool Runtime::development() const { return settings_.GetString("environment") == "development"; }

std::optional<int> Runtime::Init(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detector on:
  // every lock inside gRPC then updates a global lock graph (a few per cent of a
  // service's CPU per call). The detector is a debugging aid; gRPC's own builds turn it
  // off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc_server::BlockShutdownSignals();
  auto loaded = settings_.Load(argc, argv, config::ProcessEnvironment());
  if (loaded.help_shown) {
    std::cout << settings_.Help();
    return 0;
  }
  if (!loaded.ok()) {
    std::cerr << spec_.binary << ": configuration error: " << loaded.error << "\n";
    return 2;
  }
  log::Setup(
      spec_.service, settings_.GetString("log-level"),
      settings_.GetString("log-format") == "json" ? log::Format::kJson : log::Format::kPlain);
  spdlog::info("{} {} ({}) starting", spec_.binary, Version(), Build());

  pool_ = std::make_unique<pg::Pool>(pg::PoolOptions{
      .url = settings_.GetString("pg-url"),
      .size = static_cast<int>(settings_.GetInt("pg-pool-size")),
      .statement_timeout_ms = static_cast<int>(settings_.GetInt("pg-statement-timeout-ms")),
      .acquire_timeout_ms = static_cast<int>(settings_.GetInt("pg-acquire-timeout-ms")),
      .application_name = spec_.binary});
  redis_endpoint_ = redis::Endpoint{.host = settings_.GetString("redis-host"),
                                    .port = static_cast<int>(settings_.GetInt("redis-port"))};
  redis_ = std::make_unique<redis::Client>(redis_endpoint_);

  // PostgreSQL may still be starting (compose, Kubernetes): retry until the timeout.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(settings_.GetInt("startup-timeout-ms"));
  std::string last_error;
  for (;;) {
    try {
      auto result = migrate::Apply(*pool_, spec_.service, spec_.migrations);
      schema_version_ = result.schema_version;
      spdlog::info("schema '{}' at version {} ({} applied now)", spec_.service, schema_version_,
                   result.applied_now);
      break;
    } catch (const pqxx::broken_connection& e) {
      last_error = e.what();
    } catch (const std::exception& e) {
      spdlog::critical("migrations failed: {}", e.what());
      return 1;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::critical("PostgreSQL at setting 'pg-url' is unreachable: {}", last_error);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }

  registry_.AddCallbackGauge("labelloop_pg_pool_size", "PostgreSQL pool size",
                             [this] { return pool_->size(); });
  registry_.AddCallbackGauge("labelloop_pg_pool_in_use", "PostgreSQL connections borrowed",
                             [this] { return pool_->in_use(); });
  registry_.AddCallbackGauge("labelloop_pg_pool_open", "PostgreSQL connections open",
                             [this] { return pool_->open_connections(); });
  registry_.AddCallbackGauge("labelloop_uptime_seconds", "seconds since start", [this] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_steady_)
        .count();
  });
  exporter_ =
      std::make_unique<metrics::HttpExporter>(registry_, settings_.GetString("metrics-host"),
                                              static_cast<int>(settings_.GetInt("metrics-port")));
  if (!exporter_->Start()) {
    spdlog::critical("cannot bind the metrics port (setting 'metrics-port' = {})",
                     settings_.GetInt("metrics-port"));
    return 1;
  }
  spdlog::info("metrics on http://{}:{}/metrics", settings_.GetString("metrics-host"),
               exporter_->port());
  return std::nullopt;
}

bool Runtime::Ready() {
  const bool pg_up = pool_->Ping();
  const bool redis_up = redis_->Ping();
  registry_.GetGauge("labelloop_pg_up", "1 while PostgreSQL answers the health check")
      .Set(pg_up ? 1 : 0);
  registry_.GetGauge("labelloop_redis_up", "1 while Redis answers the health check")
      .Set(redis_up ? 1 : 0);
  bool ok = pg_up && redis_up;
  for (const auto& check : extra_checks_) ok = ok && check();
  return ok;
}

int Runtime::Serve(const std::vector<grpc::Service*>& services,
                   const std::function<void()>& on_drain,
                   const std::vector<grpc_server::AsyncMethods*>& async) {
  grpc_server::ServerOptions options{
      .host = settings_.GetString("grpc-host"),
      .port = static_cast<int>(settings_.GetInt("grpc-port")),
      .max_message_bytes = static_cast<int>(settings_.GetInt("max-message-bytes")),
      .keepalive_time_ms = static_cast<int>(settings_.GetInt("keepalive-ms")),
      .shutdown_grace_ms = static_cast<int>(settings_.GetInt("shutdown-grace-ms")),
      .health_interval_ms = static_cast<int>(settings_.GetInt("health-interval-ms"))};
  options.records_own_metrics = records_own_metrics_;
  server_ = std::make_unique<grpc_server::Server>(options, &registry_, [this] { return Ready(); });
  for (auto* s : services) server_->AddService(s);
  for (auto* a : async) server_->AddAsync(a);
  if (!server_->Start()) {
    spdlog::critical("cannot bind the gRPC port (setting 'grpc-port' = {})", options.port);
    return 1;
  }
  server_->WaitForShutdown(on_drain);
  exporter_->Stop();
  return 0;
}

void Runtime::FillInfo(v1::ServiceInfo* info) const {
  info->set_service(spec_.service);
  info->set_version(Version());
  info->set_build(Build());
  info->set_uptime_seconds(std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now() - started_steady_)
                               .count());
  info->set_schema_version(schema_version_);
  auto since = std::chrono::duration_cast<std::chrono::seconds>(started_at_.time_since_epoch());
  info->mutable_started_at()->set_seconds(since.count());
}

}  // namespace labelloop::bootstrap
