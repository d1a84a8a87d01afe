// gRPC adapter of the gateway service: proto messages in and out, domain errors to Status.
#pragma once

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/gateway.grpc.pb.h"

namespace labelloop::gateway {

class GatewayServiceImpl final : public v1::GatewayService::Service {
 public:
  explicit GatewayServiceImpl(const bootstrap::Runtime& runtime) : runtime_(runtime) {}

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;

 private:
  const bootstrap::Runtime& runtime_;
};

}  // namespace labelloop::gateway
