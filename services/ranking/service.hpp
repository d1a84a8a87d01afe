// gRPC adapter of the ranking service: proto messages in and out, domain errors to Status.
#pragma once

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/ranking.grpc.pb.h"

namespace labelloop::ranking {

class RankingServiceImpl final : public v1::RankingService::Service {
 public:
  explicit RankingServiceImpl(const bootstrap::Runtime& runtime) : runtime_(runtime) {}

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;

 private:
  const bootstrap::Runtime& runtime_;
};

}  // namespace labelloop::ranking
