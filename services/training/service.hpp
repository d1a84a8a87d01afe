// gRPC adapter of the training service: proto messages in and out, domain errors to Status.
#pragma once

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/training.grpc.pb.h"

namespace labelloop::training {

class TrainingServiceImpl final : public v1::TrainingService::Service {
 public:
  explicit TrainingServiceImpl(const bootstrap::Runtime& runtime) : runtime_(runtime) {}

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;

 private:
  const bootstrap::Runtime& runtime_;
};

}  // namespace labelloop::training
