// gRPC adapter of the labeling service: proto messages in and out, domain errors to Status.
#pragma once

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/labeling.grpc.pb.h"

namespace labelloop::labeling {

class LabelingServiceImpl final : public v1::LabelingService::Service {
 public:
  explicit LabelingServiceImpl(const bootstrap::Runtime& runtime) : runtime_(runtime) {}

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;

 private:
  const bootstrap::Runtime& runtime_;
};

}  // namespace labelloop::labeling
