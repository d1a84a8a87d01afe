#include "services/gateway/policy.hpp"

namespace labelloop::gateway {
namespace {

MethodPolicy Row(const std::string& service, const std::string& method, std::string backend,
                 Access access, std::string project_field = "project_id") {
  MethodPolicy p;
  p.method = "/labelloop.v1." + service + "/" + method;
  p.backend = std::move(backend);
  p.access = access;
  p.project_field = std::move(project_field);
  return p;
}

MethodPolicy ById(const std::string& service, const std::string& method, std::string backend,
                  Access access, std::string id_field, const std::string& lookup,
                  std::string project_field = "") {
  MethodPolicy p = Row(service, method, std::move(backend), access, std::move(project_field));
  p.id_field = std::move(id_field);
  p.lookup_method = "/labelloop.v1." + service + "/" + lookup;
  return p;
}

MethodPolicy With(MethodPolicy p, ResponseHook hook) {
  p.hook = hook;
  return p;
}

std::vector<MethodPolicy> BuildTable() {
  const auto A = Access::kAuthenticated;
  const auto R = Access::kProjectRead;
  const auto L = Access::kProjectLabel;
  const auto M = Access::kProjectManage;
  const std::string lab = "LabelingService";
  const std::string ing = "LabelingIngestService";
  const std::string tr = "TrainingService";
  const std::string rk = "RankingService";
  const std::string dl = "DlManagerService";
  return {
      // Projects, claims and labels. GetInfo of internal services stays internal.
      With(Row(lab, "CreateProject", "labeling", Access::kCreateProject, ""),
           ResponseHook::kRecordOwner),
      With(Row(lab, "ListProjects", "labeling", A, ""), ResponseHook::kFilterProjects),
      Row(lab, "GetProject", "labeling", R),
      Row(lab, "GetStats", "labeling", R),
      Row(lab, "ListItems", "labeling", R),
      ById(lab, "GetItem", "labeling", R, "item_id", "GetItem"),
      Row(lab, "UpdateProject", "labeling", M),
      Row(lab, "ArchiveProject", "labeling", M),
      Row(lab, "CompleteProject", "labeling", M),
      With(Row(lab, "ClaimNext", "labeling", L), ResponseHook::kLearnIds),
      ById(lab, "RenewLease", "labeling", L, "item_id", "GetItem"),
      ById(lab, "ReleaseLease", "labeling", L, "item_id", "GetItem"),
      ById(lab, "SubmitLabel", "labeling", L, "item_id", "GetItem"),
      ById(lab, "Relabel", "labeling", L, "item_id", "GetItem"),
      ById(lab, "Skip", "labeling", L, "item_id", "GetItem"),
      // Ingestion (Upload is client-streaming: the header message names the project).
      Row(ing, "Upload", "labeling", M, "header.project_id"),
      Row(ing, "PushItem", "labeling", M),
      // Training.
      With(Row(tr, "StartTraining", "training", M), ResponseHook::kLearnIds),
      ById(tr, "GetTrainingJob", "training", R, "job_id", "GetTrainingJob"),
      With(Row(tr, "ListTrainingJobs", "training", R), ResponseHook::kLearnIds),
      ById(tr, "CancelTraining", "training", M, "job_id", "GetTrainingJob"),
      ById(tr, "WatchTraining", "training", R, "job_id", "GetTrainingJob"),
      Row(tr, "SetRetrainPolicy", "training", M),
      Row(tr, "GetRetrainPolicy", "training", R),
      With(Row(tr, "ListModels", "training", R), ResponseHook::kLearnIds),
      ById(tr, "GetModel", "training", R, "model_id", "GetModel"),
      ById(tr, "Predict", "training", M, "model_id", "GetModel", "project_id"),
      // Ranking (NextCandidates is labeling's, not a user's).
      Row(rk, "SetStrategy", "ranking", M),
      Row(rk, "GetScores", "ranking", R),
      Row(rk, "Distribution", "ranking", R),
      Row(rk, "RankInfo", "ranking", R),
      Row(rk, "ScoreProbabilities", "ranking", A, ""),
      // Downloads: a manager's business.
      With(Row(dl, "RequestDownload", "dl_manager", M), ResponseHook::kLearnIds),
      ById(dl, "GetDownload", "dl_manager", M, "download_id", "GetDownload"),
      With(Row(dl, "ListDownloads", "dl_manager", M), ResponseHook::kLearnIds),
      ById(dl, "FetchArchive", "dl_manager", M, "download_id", "GetDownload"),
      ById(dl, "DeleteDownload", "dl_manager", M, "download_id", "GetDownload"),
  };
}

}  // namespace

std::string_view AccessName(Access access) {
  switch (access) {
    case Access::kAuthenticated:
      return "authenticated";
    case Access::kCreateProject:
      return "create-project";
    case Access::kProjectRead:
      return "project-read";
    case Access::kProjectLabel:
      return "project-label";
    case Access::kProjectManage:
      return "project-manage";
    case Access::kAdmin:
      return "admin";
  }
  return "admin";
}

const std::vector<std::string>& IdentityFields() {
  static const std::vector<std::string> kFields = {"annotator", "created_by", "requested_by"};
  return kFields;
}

const std::vector<MethodPolicy>& PublicMethods() {
  static const std::vector<MethodPolicy> kTable = BuildTable();
  return kTable;
}

std::optional<Role> ProjectRole(const Principal& caller, std::optional<Role> membership) {
  if (caller.role == Role::kAdmin) return Role::kAdmin;
  if (!membership) return std::nullopt;
  // A project role never exceeds the user's global role.
  return AtLeast(caller.role, *membership) ? *membership : caller.role;
}

Decision Authorize(const Principal* caller, const MethodPolicy& policy,
                   std::optional<int64_t> project_id, std::optional<Role> membership) {
  if (caller == nullptr) {
    return {DecisionCode::kUnauthenticated,
            "sign in: send 'authorization: Bearer <access token>' or an API key"};
  }
  switch (policy.access) {
    case Access::kAuthenticated:
      return {};
    case Access::kAdmin:
      if (caller->role == Role::kAdmin) return {};
      return {DecisionCode::kPermissionDenied, "only an admin may call " + policy.method};
    case Access::kCreateProject:
      if (AtLeast(caller->role, Role::kManager)) return {};
      return {DecisionCode::kPermissionDenied, "creating projects needs the manager role"};
    case Access::kProjectRead:
    case Access::kProjectLabel:
    case Access::kProjectManage:
      break;
  }
  if (!project_id || *project_id <= 0) {
    return {DecisionCode::kInvalidArgument,
            (policy.project_field.empty() ? policy.id_field : policy.project_field) +
                ": required (which project or object the call is about)"};
  }
  const auto role = ProjectRole(*caller, membership);
  if (!role) {
    return {DecisionCode::kNotFound, "project " + std::to_string(*project_id) + " not found"};
  }
  if (policy.access == Access::kProjectManage && !AtLeast(*role, Role::kManager)) {
    return {DecisionCode::kPermissionDenied,
            "this call needs the manager role in project " + std::to_string(*project_id)};
  }
  return {};
}

}  // namespace labelloop::gateway
