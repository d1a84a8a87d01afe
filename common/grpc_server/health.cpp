#include "common/grpc_server/health.hpp"

namespace labelloop::grpc_server {
namespace hv1 = grpc::health::v1;

void HealthState::Set(const std::string& service, bool serving) {
  {
    std::lock_guard lock(mu_);
    if (shut_down_) return;
    serving_[service] = serving;
    ++version_;
  }
  cv_.notify_all();
}

void HealthState::SetAll(bool serving) {
  {
    std::lock_guard lock(mu_);
    if (shut_down_) return;
    for (auto& [name, s] : serving_) s = serving;
    ++version_;
  }
  cv_.notify_all();
}

void HealthState::Shutdown() {
  {
    std::lock_guard lock(mu_);
    for (auto& [name, s] : serving_) s = false;
    shut_down_ = true;
    ++version_;
  }
  cv_.notify_all();
}

std::optional<HealthState::Status> HealthState::Get(const std::string& service) const {
  std::lock_guard lock(mu_);
  auto it = serving_.find(service);
  if (it == serving_.end()) return std::nullopt;
  return it->second ? hv1::HealthCheckResponse::SERVING : hv1::HealthCheckResponse::NOT_SERVING;
}

uint64_t HealthState::WaitForChange(uint64_t version, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return version_ != version; });
  return version_;
}

uint64_t HealthState::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

namespace {

class Interface final : public grpc::HealthCheckServiceInterface {
 public:
  explicit Interface(std::shared_ptr<HealthState> state) : state_(std::move(state)) {}
  void SetServingStatus(const std::string& service_name, bool serving) override {
    state_->Set(service_name, serving);
  }
  void SetServingStatus(bool serving) override { state_->SetAll(serving); }
  void Shutdown() override { state_->Shutdown(); }

 private:
  std::shared_ptr<HealthState> state_;
};

}  // namespace

std::unique_ptr<grpc::HealthCheckServiceInterface> HealthInterface(
    std::shared_ptr<HealthState> state) {
  return std::make_unique<Interface>(std::move(state));
}

grpc::Status HealthService::Check(grpc::ServerContext* /*ctx*/, const hv1::HealthCheckRequest* req,
                                  hv1::HealthCheckResponse* resp) {
  auto status = state_->Get(req->service());
  if (!status) return {grpc::StatusCode::NOT_FOUND, "unknown service " + req->service()};
  resp->set_status(*status);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* ctx, const hv1::HealthCheckRequest* req,
                                  grpc::ServerWriter<hv1::HealthCheckResponse>* writer) {
  std::optional<HealthState::Status> sent;
  uint64_t version = state_->version();
  while (!ctx->IsCancelled()) {
    auto status = state_->Get(req->service()).value_or(hv1::HealthCheckResponse::SERVICE_UNKNOWN);
    if (!sent || *sent != status) {
      hv1::HealthCheckResponse resp;
      resp.set_status(status);
      if (!writer->Write(resp)) break;
      sent = status;
    }
    // Wakes on a change, and at least every second to notice a cancelled call.
    version = state_->WaitForChange(version, std::chrono::milliseconds(1000));
  }
  return {grpc::StatusCode::CANCELLED, "health watch ended"};
}

}  // namespace labelloop::grpc_server
