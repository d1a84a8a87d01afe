// gRPC adapter of the training service: proto messages in and out, domain errors to Status.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/training.grpc.pb.h"
#include "services/training/model_format.hpp"
#include "services/training/retrain.hpp"
#include "services/training/storage/store.hpp"

namespace labelloop::training {

class TrainingServiceImpl final : public v1::TrainingService::Service {
 public:
  TrainingServiceImpl(const bootstrap::Runtime& runtime, storage::Store& store,
                      redis::Client& redis, JobRules rules, int watch_poll_ms);

  // Ends open WatchTraining streams (the server is draining).
  void Drain() { draining_ = true; }

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;
  grpc::Status StartTraining(grpc::ServerContext* context, const v1::StartTrainingRequest* request,
                             v1::StartTrainingResponse* reply) override;
  grpc::Status GetTrainingJob(grpc::ServerContext* context,
                              const v1::GetTrainingJobRequest* request,
                              v1::TrainingJob* reply) override;
  grpc::Status ListTrainingJobs(grpc::ServerContext* context,
                                const v1::ListTrainingJobsRequest* request,
                                v1::ListTrainingJobsResponse* reply) override;
  grpc::Status CancelTraining(grpc::ServerContext* context,
                              const v1::CancelTrainingRequest* request,
                              v1::TrainingJob* reply) override;
  grpc::Status WatchTraining(grpc::ServerContext* context, const v1::WatchTrainingRequest* request,
                             grpc::ServerWriter<v1::TrainingProgress>* writer) override;
  grpc::Status SetRetrainPolicy(grpc::ServerContext* context,
                                const v1::SetRetrainPolicyRequest* request,
                                v1::RetrainPolicy* reply) override;
  grpc::Status GetRetrainPolicy(grpc::ServerContext* context,
                                const v1::GetRetrainPolicyRequest* request,
                                v1::RetrainPolicy* reply) override;
  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* reply) override;
  grpc::Status GetModel(grpc::ServerContext* context, const v1::GetModelRequest* request,
                        v1::ModelInfo* reply) override;
  grpc::Status Predict(grpc::ServerContext* context, const v1::PredictRequest* request,
                       v1::PredictResponse* reply) override;

 private:
  // Models never change once stored, so parsed ones are kept (a few per process).
  std::shared_ptr<const PortableModel> LoadModel(int64_t model_id, int* version,
                                                 int64_t* project_id);
  void PolicyToProto(const storage::Policy& p, v1::RetrainPolicy* out);

  const bootstrap::Runtime& runtime_;
  storage::Store& store_;
  redis::Client& redis_;
  JobRules rules_;
  int watch_poll_ms_;
  std::atomic<bool> draining_{false};
  std::mutex cache_mu_;
  struct Cached {
    std::shared_ptr<const PortableModel> model;
    int version;
    int64_t project_id;
  };
  std::map<int64_t, Cached> cache_;
};

}  // namespace labelloop::training
