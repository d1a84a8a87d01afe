// Which internal methods the gateway exposes and who may call them: one row per method.
// Plain C++ (no gRPC): the proxy reads the table, extracts the project id and asks
// Authorize() for a decision.
//
// The rule for a project the caller does not belong to is NOT_FOUND ("project 7 not
// found"), the same answer as for a project that does not exist, so ids cannot be probed.
// A member whose project role is too low gets PERMISSION_DENIED.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/gateway/roles.hpp"

namespace labelloop::gateway {

enum class Access {
  kAuthenticated,  // any signed-in caller (e.g. ListProjects, filtered to their projects)
  kCreateProject,  // global role manager or admin
  kProjectRead,    // any member of the project (or admin)
  kProjectLabel,   // any member of the project (or admin): claim, submit, skip
  kProjectManage,  // a manager of the project (or admin): upload, train, download, settings
  kAdmin,          // admins only
};
std::string_view AccessName(Access access);

// Work the proxy does on a successful response.
enum class ResponseHook {
  kNone,
  kFilterProjects,  // drop projects the caller is not a member of (ListProjects)
  kRecordOwner,     // record the caller as owner and manager of the new project
  kLearnIds,        // remember the item/job/model/download ids of the answer → project
};

struct MethodPolicy {
  std::string method;   // full gRPC name: "/labelloop.v1.LabelingService/GetProject"
  std::string backend;  // "labeling", "ranking", "training", "dl_manager"
  Access access = Access::kProjectRead;
  // The top-level request field holding the project id. Empty for methods without one.
  std::string project_field = "project_id";
  // For requests that name an object of a project by its own id (an item, a job, a
  // model, a download): the request field with that id, and the method of the owning
  // service that returns the object (its request has a field of the same name, its
  // answer a `project_id`). Used when project_field is empty or 0. Answers are cached:
  // an object never moves to another project.
  std::string id_field;
  std::string lookup_method;
  ResponseHook hook = ResponseHook::kNone;
};

// Request fields naming the acting person; the gateway overwrites them with the
// caller's username so nobody can act under another name.
const std::vector<std::string>& IdentityFields();

// The allow-list. Methods not present in the compiled protos are skipped at start-up.
const std::vector<MethodPolicy>& PublicMethods();

// The role the caller holds within a project: admin (global), or their membership role.
std::optional<Role> ProjectRole(const Principal& caller, std::optional<Role> membership);

enum class DecisionCode {
  kAllow,
  kUnauthenticated,
  kPermissionDenied,
  kNotFound,
  kInvalidArgument
};

struct Decision {
  DecisionCode code = DecisionCode::kAllow;
  std::string message;
  bool allowed() const { return code == DecisionCode::kAllow; }
};

// `caller` is null when the call carries no valid credentials. `project_id` is the id
// read from the request (nullopt when the policy names none or the field is 0).
// `membership` is the caller's role within that project (nullopt when not a member).
Decision Authorize(const Principal* caller, const MethodPolicy& policy,
                   std::optional<int64_t> project_id, std::optional<Role> membership);

}  // namespace labelloop::gateway
