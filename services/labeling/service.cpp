#include "services/labeling/service.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/bus/channels.hpp"
#include "common/grpc_server/request_context.hpp"
#include "services/labeling/convert.hpp"
#include "services/labeling/domain/claims.hpp"
#include "services/labeling/domain/cursor.hpp"
#include "services/labeling/domain/schema.hpp"
#include "services/labeling/project_checks.hpp"

namespace labelloop::labeling {

namespace {

// No exception escapes a handler.
template <typename Fn>
grpc::Status Handle(const char* rpc, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    spdlog::error("{}: unexpected error: {}", rpc, e.what());
    return {grpc::StatusCode::INTERNAL, std::string(rpc) + ": internal error"};
  }
}

std::vector<std::string> Strings(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return {field.begin(), field.end()};
}

}  // namespace

grpc::Status LabelingServiceImpl::GetInfo(grpc::ServerContext* context,
                                          const v1::GetInfoRequest* /*request*/,
                                          v1::ServiceInfo* reply) {
  grpc_server::RequestScope scope(context);
  runtime_.FillInfo(reply);
  return grpc::Status::OK;
}

grpc::Status LabelingServiceImpl::CreateProject(grpc::ServerContext* context,
                                                const v1::CreateProjectRequest* req,
                                                v1::Project* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("CreateProject", [&]() -> grpc::Status {
    auto checked = CheckNewProject(*req);
    if (!checked.ok()) return ToStatus(checked.error());
    auto created = deps_.projects.Create(checked.value());
    if (!created.ok()) return ToStatus(created.error());
    ToProto(created.value(), reply);
    return grpc::Status::OK;
  });
}

grpc::Status LabelingServiceImpl::GetProject(grpc::ServerContext* context,
                                             const v1::GetProjectRequest* req, v1::Project* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("GetProject", [&]() -> grpc::Status {
    if (auto e = CheckId("project_id", req->project_id()); !e.empty()) return Invalid(e);
    auto p = deps_.projects.Get(req->project_id());
    if (!p.ok()) return ToStatus(p.error());
    ToProto(p.value(), reply);
    return grpc::Status::OK;
  });
}

grpc::Status LabelingServiceImpl::ListProjects(grpc::ServerContext* context,
                                               const v1::ListProjectsRequest* req,
                                               v1::ListProjectsResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("ListProjects", [&]() -> grpc::Status {
    if (req->page_size() < 0 || req->page_size() > 500) {
      return Invalid("page_size: must be between 1 and 500 (0 = 50)");
    }
    const int size = req->page_size() == 0 ? 50 : req->page_size();
    const auto fp = FilterFingerprint(std::string("projects|archived=") +
                                      (req->include_archived() ? "1" : "0"));
    auto cursor = DecodeCursor(req->page_token(), fp);
    if (!cursor.ok()) return Invalid(cursor.error);
    auto list = deps_.projects.List(cursor.last_id, size + 1, req->include_archived());
    if (!list.ok()) return ToStatus(list.error());
    auto& rows = list.value();
    const bool more = static_cast<int>(rows.size()) > size;
    if (more) rows.resize(static_cast<size_t>(size));
    for (const auto& p : rows) ToProto(p, reply->add_projects());
    if (more) reply->set_next_page_token(EncodeCursor(rows.back().id, fp));
    return grpc::Status::OK;
  });
}

grpc::Status LabelingServiceImpl::UpdateProject(grpc::ServerContext* context,
                                                const v1::UpdateProjectRequest* req,
                                                v1::Project* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("UpdateProject", [&]() -> grpc::Status {
    if (auto e = CheckId("project_id", req->project_id()); !e.empty()) return Invalid(e);
    auto change = CheckProjectChange(*req);
    if (!change.ok()) return ToStatus(change.error());
    auto p = deps_.projects.Update(req->project_id(), change.value());
    if (!p.ok()) return ToStatus(p.error());
    ToProto(p.value(), reply);
    return grpc::Status::OK;
  });
}

grpc::Status LabelingServiceImpl::ArchiveProject(grpc::ServerContext* context,
                                                 const v1::ArchiveProjectRequest* req,
                                                 v1::Project* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("ArchiveProject", [&]() -> grpc::Status {
    if (auto e = CheckId("project_id", req->project_id()); !e.empty()) return Invalid(e);
    auto p = deps_.projects.Archive(req->project_id());
    if (!p.ok()) return ToStatus(p.error());
    ToProto(p.value(), reply);
    return grpc::Status::OK;
  });
}

grpc::Status LabelingServiceImpl::CompleteProject(grpc::ServerContext* context,
                                                  const v1::CompleteProjectRequest* req,
                                                  v1::Project* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("CompleteProject", [&]() -> grpc::Status {
    if (auto e = CheckId("project_id", req->project_id()); !e.empty()) return Invalid(e);
    auto p = deps_.projects.Complete(req->project_id());
    if (!p.ok()) return ToStatus(p.error());
    ToProto(p.value(), reply);
    return grpc::Status::OK;
  });
}

void LabelingServiceImpl::AnswerClaimNext(grpc::ServerContext* context,
                                          const v1::ClaimNextRequest* req,
                                          v1::ClaimNextResponse* reply, Finish finish) {
  grpc_server::RequestScope scope(context);
  bool queued = false;
  grpc::Status refused = Handle("ClaimNext", [&]() -> grpc::Status {
    if (auto e = CheckId("project_id", req->project_id()); !e.empty()) return Invalid(e);
    if (auto e = CheckAnnotator(req->annotator()); !e.empty()) return Invalid(e);
    auto size = CheckClaimSize(req->n());
    if (!size.error.empty()) return Invalid(size.error);
    // The claim batch asks the ranking service (once per project and batch).
    queued = true;
    // Nothing of the call may be touched after this: `finish` may already have run.
    deps_.assignments.Claim(
        req->project_id(), req->annotator(), size.n,
        [this, req, reply, finish = std::move(finish),
         request_id = scope.request_id()](storage::AssignmentStore::ClaimResult leases) {
          log::ScopedRequestId id(request_id);
          finish(Handle("ClaimNext", [&]() -> grpc::Status {
            if (!leases.ok()) return ToStatus(leases.error());
            reply->set_order(leases.value().by_ranking ? "ranking" : "oldest_first");
            std::vector<int64_t> ids;
            for (const auto& l : leases.value().leases) {
              auto* item = reply->add_items();
              ToProto(l, item->mutable_lease());
              item->set_already_held(l.already_held);
              item->mutable_item()->set_id(l.item_id);
              item->mutable_item()->set_project_id(req->project_id());
              ids.push_back(l.item_id);
            }
            if (req->with_payload() && !ids.empty()) {
              auto items = deps_.queries.GetItems(ids, false);
              if (!items.ok()) return ToStatus(items.error());
              for (size_t i = 0; i < items.value().size() && i < ids.size(); ++i) {
                ToProto(items.value()[i],
                        reply->mutable_items(static_cast<int>(i))->mutable_item());
              }
            }
            return grpc::Status::OK;
          }));
        });
    return grpc::Status::OK;
  });
  if (!queued) finish(refused);
}

grpc::Status LabelingServiceImpl::RenewLease(grpc::ServerContext* context,
                                             const v1::RenewLeaseRequest* req, v1::Lease* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("RenewLease", [&]() -> grpc::Status {
    if (auto e = CheckId("item_id", req->item_id()); !e.empty()) return Invalid(e);
    if (auto e = CheckLeaseToken(req->lease_token()); !e.empty()) return Invalid(e);
    auto lease = deps_.assignments.Renew(req->item_id(), req->lease_token());
    if (!lease.ok()) return ToStatus(lease.error());
    ToProto(lease.value(), reply);
    return grpc::Status::OK;
  });
}

grpc::Status LabelingServiceImpl::ReleaseLease(grpc::ServerContext* context,
                                               const v1::ReleaseLeaseRequest* req,
                                               v1::ReleaseLeaseResponse* /*reply*/) {
  grpc_server::RequestScope scope(context);
  return Handle("ReleaseLease", [&]() -> grpc::Status {
    if (auto e = CheckId("item_id", req->item_id()); !e.empty()) return Invalid(e);
    if (auto e = CheckLeaseToken(req->lease_token()); !e.empty()) return Invalid(e);
    auto done = deps_.assignments.Release(req->item_id(), req->lease_token());
    return done.ok() ? grpc::Status::OK : ToStatus(done.error());
  });
}

grpc::Status LabelingServiceImpl::Skip(grpc::ServerContext* context, const v1::SkipRequest* req,
                                       v1::SkipResponse* /*reply*/) {
  grpc_server::RequestScope scope(context);
  return Handle("Skip", [&]() -> grpc::Status {
    if (auto e = CheckId("item_id", req->item_id()); !e.empty()) return Invalid(e);
    if (auto e = CheckLeaseToken(req->lease_token()); !e.empty()) return Invalid(e);
    if (auto e = CheckSkipReason(req->reason()); !e.empty()) return Invalid(e);
    auto done = deps_.assignments.Skip(req->item_id(), req->lease_token(), req->reason());
    return done.ok() ? grpc::Status::OK : ToStatus(done.error());
  });
}

void LabelingServiceImpl::AnswerSubmitLabel(grpc::ServerContext* context,
                                            const v1::SubmitLabelRequest* req,
                                            v1::SubmitLabelResponse* reply, Finish finish) {
  grpc_server::RequestScope scope(context);
  bool queued = false;
  grpc::Status refused = Handle("SubmitLabel", [&]() -> grpc::Status {
    if (auto e = CheckId("item_id", req->item_id()); !e.empty()) return Invalid(e);
    if (auto e = CheckLeaseToken(req->lease_token()); !e.empty()) return Invalid(e);
    if (req->classes_size() == 0) return Invalid("classes: at least one class is required");
    if (auto e = CheckSecondsSpent(req->seconds_spent()); !e.empty()) return Invalid(e);
    if (!req->annotator().empty()) {
      if (auto e = CheckAnnotator(req->annotator()); !e.empty()) return Invalid(e);
    }
    storage::SubmitInput in{req->item_id(), req->lease_token(), req->annotator(),
                            Strings(req->classes()), req->seconds_spent()};
    queued = true;
    // Nothing of the call may be touched after this: `finish` may already have run.
    deps_.assignments.Submit(
        in, [this, reply, finish = std::move(finish),
             request_id = scope.request_id()](Outcome<storage::SubmitResult> result) {
          log::ScopedRequestId id(request_id);
          finish(Handle("SubmitLabel", [&]() -> grpc::Status {
            if (!result.ok()) return ToStatus(result.error());
            PublishSubmitted(result.value());
            ToProto(result.value(), reply);
            return grpc::Status::OK;
          }));
        });
    return grpc::Status::OK;
  });
  if (!queued) finish(refused);
}

grpc::Status LabelingServiceImpl::Relabel(grpc::ServerContext* context,
                                          const v1::RelabelRequest* req,
                                          v1::SubmitLabelResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("Relabel", [&]() -> grpc::Status {
    if (auto e = CheckId("item_id", req->item_id()); !e.empty()) return Invalid(e);
    if (auto e = CheckAnnotator(req->annotator()); !e.empty()) return Invalid(e);
    if (req->classes_size() == 0) return Invalid("classes: at least one class is required");
    if (auto e = CheckSecondsSpent(req->seconds_spent()); !e.empty()) return Invalid(e);
    storage::SubmitInput in{req->item_id(), "", req->annotator(), Strings(req->classes()),
                            req->seconds_spent()};
    auto result = deps_.assignments.Relabel(in);
    if (!result.ok()) return ToStatus(result.error());
    PublishSubmitted(result.value());
    ToProto(result.value(), reply);
    return grpc::Status::OK;
  });
}

void LabelingServiceImpl::PublishSubmitted(const storage::SubmitResult& r) {
  nlohmann::json payload = {{"type", "labels.submitted"},     {"version", 1},
                            {"project_id", r.project_id},     {"item_id", r.item_id},
                            {"annotator", r.annotator},       {"classes", r.classes},
                            {"item_labeled", r.item_labeled}, {"labeled_count", r.labeled_count}};
  deps_.events.Publish(bus::kLabelsSubmitted, payload.dump());
}

grpc::Status LabelingServiceImpl::GetStats(grpc::ServerContext* context,
                                           const v1::GetStatsRequest* req,
                                           v1::ProjectStats* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("GetStats", [&]() -> grpc::Status {
    if (auto e = CheckId("project_id", req->project_id()); !e.empty()) return Invalid(e);
    auto stats = deps_.queries.Stats(req->project_id());
    if (!stats.ok()) return ToStatus(stats.error());
    ToProto(req->project_id(), stats.value(), reply);
    return grpc::Status::OK;
  });
}

grpc::Status LabelingServiceImpl::ListItems(grpc::ServerContext* context,
                                            const v1::ListItemsRequest* req,
                                            v1::ListItemsResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("ListItems", [&]() -> grpc::Status {
    auto filter = CheckItemFilter(*req);
    if (!filter.ok()) return ToStatus(filter.error());
    if (req->page_size() < 0 || req->page_size() > 1000) {
      return Invalid("page_size: must be between 1 and 1000 (0 = 100)");
    }
    const int size = req->page_size() == 0 ? 100 : req->page_size();
    const auto fp = FilterFingerprint(FilterKey(filter.value()));
    auto cursor = DecodeCursor(req->page_token(), fp);
    if (!cursor.ok()) return Invalid(cursor.error);
    if (auto p = deps_.projects.Get(req->project_id()); !p.ok()) return ToStatus(p.error());
    auto items = deps_.queries.ListItems(filter.value(), cursor.last_id, size + 1);
    if (!items.ok()) return ToStatus(items.error());
    auto& rows = items.value();
    const bool more = static_cast<int>(rows.size()) > size;
    if (more) rows.resize(static_cast<size_t>(size));
    for (const auto& it : rows) ToProto(it, reply->add_items());
    if (more) reply->set_next_page_token(EncodeCursor(rows.back().id, fp));
    return grpc::Status::OK;
  });
}

grpc::Status LabelingServiceImpl::GetItem(grpc::ServerContext* context,
                                          const v1::GetItemRequest* req, v1::Item* reply) {
  grpc_server::RequestScope scope(context);
  return Handle("GetItem", [&]() -> grpc::Status {
    if (auto e = CheckId("item_id", req->item_id()); !e.empty()) return Invalid(e);
    auto items = deps_.queries.GetItems({req->item_id()}, true);
    if (!items.ok()) return ToStatus(items.error());
    if (items.value().empty()) {
      return {grpc::StatusCode::NOT_FOUND, "item_id: no item " + std::to_string(req->item_id())};
    }
    ToProto(items.value().front(), reply);
    return grpc::Status::OK;
  });
}

}  // namespace labelloop::labeling
