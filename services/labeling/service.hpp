// gRPC adapter of the labeling service: proto messages in and out, request checks
// through the domain rules, storage calls, domain errors to Status. No SQL here.
#pragma once

#include <functional>

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/labeling.grpc.pb.h"
#include "services/labeling/event_publisher.hpp"
#include "services/labeling/storage/assignment_store.hpp"
#include "services/labeling/storage/project_store.hpp"
#include "services/labeling/storage/query_store.hpp"

namespace labelloop::labeling {

struct ServiceDeps {
  storage::ProjectStore& projects;
  storage::AssignmentStore& assignments;
  storage::QueryStore& queries;
  EventPublisher& events;
};

// ClaimNext and SubmitLabel are served on the completion-queue API (async_calls.hpp): a
// claim or submit waits in a batch (storage::AssignmentStore) without holding a thread.
using LabelingServiceBase = v1::LabelingService::WithAsyncMethod_ClaimNext<
    v1::LabelingService::WithAsyncMethod_SubmitLabel<v1::LabelingService::Service>>;

class LabelingServiceImpl final : public LabelingServiceBase {
 public:
  LabelingServiceImpl(const bootstrap::Runtime& runtime, ServiceDeps deps)
      : runtime_(runtime), deps_(deps) {}

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;
  grpc::Status CreateProject(grpc::ServerContext* context, const v1::CreateProjectRequest* req,
                             v1::Project* reply) override;
  grpc::Status GetProject(grpc::ServerContext* context, const v1::GetProjectRequest* req,
                          v1::Project* reply) override;
  grpc::Status ListProjects(grpc::ServerContext* context, const v1::ListProjectsRequest* req,
                            v1::ListProjectsResponse* reply) override;
  grpc::Status UpdateProject(grpc::ServerContext* context, const v1::UpdateProjectRequest* req,
                             v1::Project* reply) override;
  grpc::Status ArchiveProject(grpc::ServerContext* context, const v1::ArchiveProjectRequest* req,
                              v1::Project* reply) override;
  grpc::Status CompleteProject(grpc::ServerContext* context, const v1::CompleteProjectRequest* req,
                               v1::Project* reply) override;
  grpc::Status RenewLease(grpc::ServerContext* context, const v1::RenewLeaseRequest* req,
                          v1::Lease* reply) override;
  grpc::Status ReleaseLease(grpc::ServerContext* context, const v1::ReleaseLeaseRequest* req,
                            v1::ReleaseLeaseResponse* reply) override;
  grpc::Status Relabel(grpc::ServerContext* context, const v1::RelabelRequest* req,
                       v1::SubmitLabelResponse* reply) override;
  grpc::Status Skip(grpc::ServerContext* context, const v1::SkipRequest* req,
                    v1::SkipResponse* reply) override;
  // The answers to ClaimNext and SubmitLabel: `finish` is called exactly once with the
  // status (reply filled when OK), possibly on another thread, possibly before these
  // return; after it, the call's context, request and reply may be gone.
  using Finish = std::function<void(grpc::Status)>;
  void AnswerClaimNext(grpc::ServerContext* context, const v1::ClaimNextRequest* req,
                       v1::ClaimNextResponse* reply, Finish finish);
  void AnswerSubmitLabel(grpc::ServerContext* context, const v1::SubmitLabelRequest* req,
                         v1::SubmitLabelResponse* reply, Finish finish);

  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* req,
                        v1::ProjectStats* reply) override;
  grpc::Status ListItems(grpc::ServerContext* context, const v1::ListItemsRequest* req,
                         v1::ListItemsResponse* reply) override;
  grpc::Status GetItem(grpc::ServerContext* context, const v1::GetItemRequest* req,
                       v1::Item* reply) override;

 private:
  void PublishSubmitted(const storage::SubmitResult& result);

  const bootstrap::Runtime& runtime_;
  ServiceDeps deps_;
};

}  // namespace labelloop::labeling
