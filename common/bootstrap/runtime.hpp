// What every service process shares between its flags and its gRPC server: the
// standard settings, logging, the PostgreSQL pool, Redis, migrations, metrics,
// health and the drain on SIGTERM. A service's main() is:
//
//   bootstrap::Runtime rt({.service = "labeling", .grpc_port = 50052, ...});
//   rt.settings().AddInt("lease-seconds", 300, "...");   // its own settings
//   if (auto code = rt.Init(argc, argv)) return *code;   // help, bad config, no DB
//   MyService service(rt.pool(), ...);
//   return rt.Serve({&service});
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.hpp"
#include "common/grpc_server/server.hpp"
#include "common/metrics/metrics.hpp"
#include "common/migrate/migrate.hpp"
#include "common/pg/pool.hpp"
#include "common/redis/redis.hpp"
#include "labelloop/v1/common.pb.h"

namespace labelloop::bootstrap {

struct ProcessSpec {
  std::string service;  // "labeling"; also the PostgreSQL schema name
  std::string binary;   // "labelloop-labeling"
  std::string description;
  int grpc_port = 0;
  int metrics_port = 0;
  std::vector<migrate::Migration> migrations;
};

// Version string compiled into every binary.
const char* Version();
const char* Build();

class Runtime {
 public:
  explicit Runtime(ProcessSpec spec);
  ~Runtime();

  // Declare service-specific settings here before Init.
  config::Settings& settings() { return settings_; }

  // Loads settings, sets up logging, connects to PostgreSQL (retrying until the
  // start-up timeout), applies migrations and starts the metrics endpoint. Returns
  // an exit code when the process must stop now (0 after --help, 2 on bad
  // configuration, 1 when a dependency is missing), nullopt to go on.
  std::optional<int> Init(int argc, char** argv);

  // Serves until SIGTERM/SIGINT, then calls on_drain and drains; returns the exit code.
  int Serve(const std::vector<grpc::Service*>& services,
            const std::function<void()>& on_drain = nullptr,
            const std::vector<grpc_server::AsyncMethods*>& async = {});

  pg::Pool& pool() { return *pool_; }
  redis::Client& redis() { return *redis_; }
  const redis::Endpoint& redis_endpoint() const { return redis_endpoint_; }
  metrics::Registry& metrics() { return registry_; }
  const ProcessSpec& spec() const { return spec_; }
  int schema_version() const { return schema_version_; }
  bool development() const;
  // Bound ports (after Serve starts), for logs and tests.
  int grpc_port() const { return server_ ? server_->port() : 0; }

  // Fills the GetInfo answer.
  void FillInfo(v1::ServiceInfo* info) const;

  // Methods whose service counts its calls itself (grpc_server::RecordCall); call before
  // Serve.
  void SetRecordsOwnMetrics(std::function<bool(const std::string& method)> f) {
    records_own_metrics_ = std::move(f);
  }

  // Registers a check run by the health loop on top of PostgreSQL and Redis.
  void AddReadinessCheck(std::function<bool()> check) { extra_checks_.push_back(std::move(check)); }

 private:
  bool Ready();

  ProcessSpec spec_;
  config::Settings settings_;
  metrics::Registry registry_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<redis::Client> redis_;
  redis::Endpoint redis_endpoint_;
  std::unique_ptr<metrics::HttpExporter> exporter_;
  std::unique_ptr<grpc_server::Server> server_;
  std::vector<std::function<bool()>> extra_checks_;
  std::function<bool(const std::string&)> records_own_metrics_;
  int schema_version_ = 0;
  std::chrono::system_clock::time_point started_at_;
  std::chrono::steady_clock::time_point started_steady_;
};

}  // namespace labelloop::bootstrap
