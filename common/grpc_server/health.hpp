// The services' grpc.health.v1 service, in place of the one gRPC provides.
//
// gRPC 1.51's default health service is a callback service: a server that has one gets
// gRPC's "nexting" threads, which poll the completion queues like any other thread. With
// the server's own threads polling too, epoll1 then hands the poller role to one of those
// threads on most wake-ups, and every call pays the thread switches (about 7 per unary
// call through the gateway's proxy). This one is a plain synchronous service with the
// same behaviour (Check, Watch, statuses per service name, all NOT_SERVING after
// Shutdown), plugged in through the server's HealthCheckServiceInterface so
// grpc_server::Server drives it through GetHealthCheckService() as before.
#pragma once

#include <grpcpp/health_check_service_interface.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"

namespace labelloop::grpc_server {

// Serving status per service name ("" = the whole server), shared by the interface the
// server drives and the service callers query.
class HealthState {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  void Set(const std::string& service, bool serving);
  void SetAll(bool serving);
  // Everything NOT_SERVING from now on; later Set calls are ignored.
  void Shutdown();
  // nullopt: no such service.
  std::optional<Status> Get(const std::string& service) const;
  // Waits until the statuses change after `version` or `timeout` passes; returns the
  // current version.
  uint64_t WaitForChange(uint64_t version, std::chrono::milliseconds timeout) const;
  uint64_t version() const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, bool> serving_{{"", true}};
  bool shut_down_ = false;
  uint64_t version_ = 0;
};

// What the grpc::Server is given (it takes ownership) to report statuses into `state`.
std::unique_ptr<grpc::HealthCheckServiceInterface> HealthInterface(
    std::shared_ptr<HealthState> state);

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  explicit HealthService(std::shared_ptr<HealthState> state) : state_(std::move(state)) {}
  grpc::Status Check(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                     grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  std::shared_ptr<HealthState> state_;
};

}  // namespace labelloop::grpc_server
