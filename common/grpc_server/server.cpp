#include "common/grpc_server/server.hpp"

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>

#include "common/grpc_server/status_names.hpp"

namespace labelloop::grpc_server {
namespace {

// Counts every call by method and status code and records its latency.
class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(grpc::experimental::ServerRpcInfo* info, metrics::Registry* registry)
      : method_(info->method()), registry_(registry), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      RecordCall(*registry_, method_, methods->GetSendStatus().error_code(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  metrics::Registry* registry_;
  std::chrono::steady_clock::time_point start_;
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  MetricsInterceptorFactory(metrics::Registry* registry,
                            std::function<bool(const std::string&)> records_own)
      : registry_(registry), records_own_(std::move(records_own)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // No interceptor at all (not one that does nothing) keeps the call off gRPC's
    // interception path.
    if (records_own_ && records_own_(info->method())) return nullptr;
    return new MetricsInterceptor(info, registry_);
  }

 private:
  metrics::Registry* registry_;
  std::function<bool(const std::string&)> records_own_;
};

}  // namespace

void RecordCall(metrics::Registry& registry, const std::string& method, grpc::StatusCode code,
                double seconds) {
  registry
      .GetCounter("labelloop_grpc_requests_total", "gRPC calls handled",
                  {{"method", method}, {"code", StatusCodeName(code)}})
      .Increment();
  registry
      .GetHistogram("labelloop_grpc_request_duration_seconds", "gRPC call latency",
                    {{"method", method}})
      .Observe(seconds);
}

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Server::Server(ServerOptions options, metrics::Registry* registry, std::function<bool()> ready)
    : options_(std::move(options)), registry_(registry), ready_(std::move(ready)) {}

Server::~Server() {
  stop_ = true;
  cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
  StopAsync();
}

void Server::AddService(grpc::Service* service) { services_.push_back(service); }

void Server::AddAsync(AsyncMethods* methods) { async_.push_back(methods); }

void Server::StopAsync() {
  if (!async_started_) return;
  async_started_ = false;
  for (auto* a : async_) a->Stop();
}

bool Server::Start() {
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Our synchronous health service instead of gRPC's callback one (see health.hpp).
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(
      HealthInterface(health_state_)));
  builder.RegisterService(&health_service_);
  builder.AddListeningPort(options_.host + ":" + std::to_string(options_.port),
                           grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, options_.keepalive_time_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options_.keepalive_timeout_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  // The synchronous server hands each call to a polling thread and, by default, lets a
  // thread exit once two others poll: under many concurrent blocking calls (a handler
  // waiting for PostgreSQL) every call then creates and destroys a thread. Idle threads
  // are kept polling instead (they cost a stack each, no CPU).
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              options_.max_idle_threads);
  for (auto* s : services_) builder.RegisterService(s);
  for (auto* a : async_) a->AddQueues(builder);
  if (registry_ != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.push_back(
        std::make_unique<MetricsInterceptorFactory>(registry_, options_.records_own_metrics));
    builder.experimental().SetInterceptorCreators(std::move(f));
  }
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    spdlog::error("cannot listen on {}:{}", options_.host, options_.port);
    return false;
  }
  for (auto* a : async_) a->Start();
  async_started_ = true;
  // Start NOT_SERVING; the first health pass flips it once PostgreSQL and Redis answer.
  server_->GetHealthCheckService()->SetServingStatus(false);
  health_thread_ = std::thread([this] { HealthLoop(); });
  spdlog::info("gRPC listening on {}:{}", options_.host, port_);
  return true;
}

void Server::HealthLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    bool ok = false;
    try {
      ok = ready_ ? ready_() : true;
    } catch (const std::exception& e) {
      spdlog::warn("readiness check failed: {}", e.what());
    }
    lock.lock();
    if (stop_) break;
    if (ok != serving_.exchange(ok)) {
      spdlog::log(ok ? spdlog::level::info : spdlog::level::warn, "health: {}",
                  ok ? "SERVING" : "NOT_SERVING (PostgreSQL or Redis unreachable)");
    }
    server_->GetHealthCheckService()->SetServingStatus(ok);
    cv_.wait_for(lock, std::chrono::milliseconds(options_.health_interval_ms),
                 [this] { return stop_.load(); });
  }
}

void Server::RequestShutdown() {
  // Wake WaitForShutdown through the same path as a real signal.
  kill(getpid(), SIGTERM);
}

void Server::WaitForShutdown(const std::function<void()>& on_drain) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("received {}, draining (grace {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               options_.shutdown_grace_ms);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
  server_->GetHealthCheckService()->SetServingStatus(false);
  serving_ = false;
  if (on_drain) {
    try {
      on_drain();
    } catch (const std::exception& e) {
      spdlog::error("drain step failed: {}", e.what());
    }
  }
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(options_.shutdown_grace_ms));
  StopAsync();
  server_->Wait();
  server_.reset();
  spdlog::info("stopped");
}

}  // namespace labelloop::grpc_server
