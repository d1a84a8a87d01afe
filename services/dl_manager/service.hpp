// gRPC adapter of the dl_manager service: proto messages in and out, domain errors to Status.
#pragma once

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/dl_manager.grpc.pb.h"

namespace labelloop::dl_manager {

class DlManagerServiceImpl final : public v1::DlManagerService::Service {
 public:
  explicit DlManagerServiceImpl(const bootstrap::Runtime& runtime) : runtime_(runtime) {}

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;

 private:
  const bootstrap::Runtime& runtime_;
};

}  // namespace labelloop::dl_manager
