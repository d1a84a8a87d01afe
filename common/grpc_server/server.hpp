// The gRPC server every labelloop service runs: grpc.health.v1 (health.hpp; SERVING only
// while the readiness check passes), reflection, keepalive, a max message size,
// per-RPC Prometheus metrics, and a graceful drain on SIGTERM/SIGINT.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/grpc_server/health.hpp"
#include "common/metrics/metrics.hpp"

namespace labelloop::grpc_server {

struct ServerOptions {
  std::string host = "0.0.0.0";
  int port = 0;  // 0 picks a free port; port() tells which
  int max_message_bytes = 64 << 20;
  int keepalive_time_ms = 30000;
  int keepalive_timeout_ms = 10000;
  int shutdown_grace_ms = 10000;
  int health_interval_ms = 1000;
  // Handler threads kept waiting for calls rather than exiting (see Start()).
  int max_idle_threads = 128;
  // Methods whose service counts its calls itself (RecordCall): the server puts no
  // metrics interceptor on them. With the completion-queue API an interceptor is not
  // free: it cost the gateway's proxy ~20-40 us per call.
  std::function<bool(const std::string& method)> records_own_metrics = nullptr;
};

// Counts one finished call in labelloop_grpc_requests_total{method,code} and
// labelloop_grpc_request_duration_seconds{method}, as the server does for every call
// it intercepts.
void RecordCall(metrics::Registry& registry, const std::string& method, grpc::StatusCode code,
                double seconds);

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts later, so
// WaitForShutdown can take them with sigwait. Call first thing in main.
void BlockShutdownSignals();

// Methods a service serves on the completion-queue API (its `WithAsyncMethod_*` methods;
// the service itself is added with AddService as usual). Before the server is built they
// add the completion queues they poll; once it runs they start polling; after it has
// shut down (every call ended, which needs their polling) they drain and stop.
class AsyncMethods {
 public:
  virtual ~AsyncMethods() = default;
  virtual void AddQueues(grpc::ServerBuilder& builder) = 0;
  virtual void Start() = 0;
  virtual void Stop() = 0;
};

class Server {
 public:
  // `ready` is polled every health_interval_ms; its result is the health status.
  Server(ServerOptions options, metrics::Registry* registry, std::function<bool()> ready);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void AddService(grpc::Service* service);
  void AddAsync(AsyncMethods* methods);
  // Binds and starts serving; false when the port cannot be bound.
  bool Start();
  int port() const { return port_; }

  // Blocks until SIGTERM/SIGINT arrives or RequestShutdown() is called, then runs
  // `on_drain` (stop taking work), and lets in-flight calls finish within the grace
  // period before cancelling the rest.
  void WaitForShutdown(const std::function<void()>& on_drain = nullptr);
  void RequestShutdown();

  bool serving() const { return serving_.load(); }

 private:
  void HealthLoop();

  ServerOptions options_;
  metrics::Registry* registry_;
  std::function<bool()> ready_;
  void StopAsync();

  std::vector<grpc::Service*> services_;
  std::vector<AsyncMethods*> async_;
  bool async_started_ = false;
  std::shared_ptr<HealthState> health_state_ = std::make_shared<HealthState>();
  HealthService health_service_{health_state_};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> serving_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread health_thread_;
};

}  // namespace labelloop::grpc_server
