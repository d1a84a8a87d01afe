// gRPC adapter of the ranking service: proto messages in and out, domain errors to Status.
#pragma once

#include <functional>
#include <string>

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/ranking.grpc.pb.h"
#include "services/ranking/builder.hpp"
#include "services/ranking/ranker.hpp"
#include "services/ranking/storage/store.hpp"

namespace labelloop::ranking {

struct ServiceOptions {
  size_t diverse_pool_factor = 10;  // batch_diverse: pool = n x factor top candidates
  size_t diverse_pool_max = 2000;
  int max_n = 10000;
};

class RankingServiceImpl final : public v1::RankingService::Service {
 public:
  // publish_strategy(project_id) tells the other replicas a strategy changed.
  RankingServiceImpl(const bootstrap::Runtime& runtime, Ranker& ranker, storage::Store& store,
                     Builder& builder, ServiceOptions options,
                     std::function<void(int64_t)> publish_strategy);

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;
  grpc::Status NextCandidates(grpc::ServerContext* context,
                              const v1::NextCandidatesRequest* request,
                              v1::NextCandidatesResponse* reply) override;
  grpc::Status SetStrategy(grpc::ServerContext* context, const v1::SetStrategyRequest* request,
                           v1::SetStrategyResponse* reply) override;
  grpc::Status GetScores(grpc::ServerContext* context, const v1::GetScoresRequest* request,
                         v1::GetScoresResponse* reply) override;
  grpc::Status Distribution(grpc::ServerContext* context, const v1::DistributionRequest* request,
                            v1::DistributionResponse* reply) override;
  grpc::Status RankInfo(grpc::ServerContext* context, const v1::RankInfoRequest* request,
                        v1::RankInfoResponse* reply) override;
  grpc::Status ScoreProbabilities(grpc::ServerContext* context,
                                  const v1::ScoreProbabilitiesRequest* request,
                                  v1::ScoreProbabilitiesResponse* reply) override;

 private:
  const bootstrap::Runtime& runtime_;
  Ranker& ranker_;
  storage::Store& store_;
  Builder& builder_;
  ServiceOptions options_;
  std::function<void(int64_t)> publish_strategy_;
};

}  // namespace labelloop::ranking
