#include "services/gateway/gate.hpp"

#include <google/protobuf/generated_message_reflection.h>
#include <grpcpp/impl/client_unary_call.h>
#include <spdlog/spdlog.h>

#include "labelloop/v1/dl_manager.pb.h"
#include "labelloop/v1/labeling.pb.h"
#include "labelloop/v1/ranking.pb.h"
#include "labelloop/v1/training.pb.h"
#if __has_include("labelloop/v1/labeling_ingest.pb.h")
#include "labelloop/v1/labeling_ingest.pb.h"
#define LABELLOOP_HAS_INGEST_PROTO 1
#endif
#include "services/gateway/proto_util.hpp"

namespace labelloop::gateway {
namespace pb = google::protobuf;

namespace {

// The generated descriptors of a static library are registered only when their object
// file is linked: touching one message of each file makes sure it is.
// (The pointers are used at run time, so the optimiser cannot drop the references.)
void LinkServiceProtos() {
  const google::protobuf::internal::DescriptorTable* tables[] = {
      &descriptor_table_labelloop_2fv1_2flabeling_2eproto,
      &descriptor_table_labelloop_2fv1_2ftraining_2eproto,
      &descriptor_table_labelloop_2fv1_2franking_2eproto,
      &descriptor_table_labelloop_2fv1_2fdl_5fmanager_2eproto,
#ifdef LABELLOOP_HAS_INGEST_PROTO
      &descriptor_table_labelloop_2fv1_2flabeling_5fingest_2eproto,
#endif
  };
  for (const auto* t : tables) google::protobuf::internal::AssignDescriptors(t);
}

grpc::StatusCode CodeOf(DecisionCode c) {
  switch (c) {
    case DecisionCode::kAllow:
      return grpc::StatusCode::OK;
    case DecisionCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    case DecisionCode::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case DecisionCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case DecisionCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
  }
  return grpc::StatusCode::INTERNAL;
}

std::string ObjectName(const std::string& id_field) {
  auto n = id_field;
  if (n.size() > 3 && n.substr(n.size() - 3) == "_id") n.resize(n.size() - 3);
  if (n == "job") n = "training job";
  return n;
}

}  // namespace

Gate::Gate(GateOptions options, Authenticator& authn, Store& store, RateLimiter& limiter)
    : options_(std::move(options)), authn_(authn), store_(store), limiter_(limiter) {
  LinkServiceProtos();
  for (const auto& [name, address] : options_.backend_addresses) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(options_.max_message_bytes);
    args.SetMaxSendMessageSize(options_.max_message_bytes);
    // Come back quickly after a backend restarts (the default backoff reaches 120 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    // The gateway forwards bytes: no per-message compression filter on the way (the
    // minimal stack), deadline checks kept.
    args.SetInt(GRPC_ARG_MINIMAL_STACK, 1);
    args.SetInt(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 1);
    auto b = std::make_unique<Backend>();
    b->name = name;
    b->address = address;
    b->channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    b->stub = std::make_unique<grpc::GenericStub>(b->channel);
    backends_[name] = std::move(b);
  }
  const auto* pool = pb::DescriptorPool::generated_pool();
  for (const auto& policy : PublicMethods()) {
    // "/labelloop.v1.LabelingService/GetProject" → "labelloop.v1.LabelingService.GetProject"
    std::string full = policy.method.substr(1);
    full[full.find('/')] = '.';
    const auto* m = pool->FindMethodByName(full);
    if (m == nullptr) {
      skipped_.push_back(policy.method + " (not in the compiled protos)");
      continue;
    }
    const auto* in = m->input_type();
    const bool has_project = !policy.project_field.empty() && HasPath(in, policy.project_field);
    const bool has_id = !policy.id_field.empty() && HasPath(in, policy.id_field);
    const bool scoped = policy.access == Access::kProjectRead ||
                        policy.access == Access::kProjectLabel ||
                        policy.access == Access::kProjectManage;
    if (scoped && !has_project && !has_id) {
      skipped_.push_back(policy.method + " (its request names no project)");
      continue;
    }
    if (has_id && !policy.lookup_method.empty()) {
      std::string lf = policy.lookup_method.substr(1);
      lf[lf.find('/')] = '.';
      const auto* lm = pool->FindMethodByName(lf);
      if (lm == nullptr || !HasPath(lm->input_type(), policy.id_field) ||
          !HasPath(lm->output_type(), "project_id")) {
        skipped_.push_back(policy.method + " (its project lookup " + policy.lookup_method +
                           " is missing)");
        continue;
      }
    }
    auto it = backends_.find(policy.backend);
    if (it == backends_.end()) {
      skipped_.push_back(policy.method + " (no address for backend " + policy.backend + ")");
      continue;
    }
    auto r = std::make_unique<Route>();
    r->policy = policy;
    r->method = m;
    r->backend = it->second.get();
    r->client_streaming = m->client_streaming();
    r->server_streaming = m->server_streaming();
    r->http_path = "/v1/" + m->service()->name() + "/" + m->name();
    by_method_[policy.method] = r.get();
    by_http_[r->http_path] = r.get();
    routes_.push_back(std::move(r));
  }
}

const Route* Gate::Find(const std::string& grpc_method) const {
  auto it = by_method_.find(grpc_method);
  return it == by_method_.end() ? nullptr : it->second;
}

const Route* Gate::FindHttp(const std::string& path) const {
  auto it = by_http_.find(path);
  return it == by_http_.end() ? nullptr : it->second;
}

grpc::Status Gate::Authenticate(const Credentials& credentials, Principal* principal,
                                int64_t* retry_after) {
  return *AuthenticateImpl(credentials, principal, retry_after, false);
}

std::optional<grpc::Status> Gate::AuthenticateImpl(const Credentials& credentials,
                                                   Principal* principal, int64_t* retry_after,
                                                   bool cached_only, bool* counted) {
  AuthResult a;
  try {
    if (cached_only) {
      auto cached = authn_.AuthenticateCached(credentials);
      if (!cached) return std::nullopt;
      a = std::move(*cached);
    } else {
      a = authn_.Authenticate(credentials);
    }
  } catch (const std::exception& e) {
    spdlog::error("authentication lookup failed: {}", e.what());
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "gateway database unavailable; retry shortly");
  }
  if (!a.principal) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        a.error.empty()
                            ? "sign in: send 'authorization: Bearer <access token>' (from "
                              "Login) or 'authorization: ApiKey <key>'"
                            : a.error);
  }
  const int64_t limit =
      a.principal->api_key_id != 0 ? options_.api_key_rate_limit : options_.user_rate_limit;
  // A limiter that counts in Redis on each call would hold up the polling thread.
  if (cached_only && limit > 0 && options_.rate_window_seconds > 0 && limiter_.Waits()) {
    return std::nullopt;
  }
  *principal = *a.principal;
  auto d = limiter_.Hit(principal->RateKey(), limit, options_.rate_window_seconds);
  if (d.allowed && counted != nullptr) *counted = true;
  if (!d.allowed) {
    *retry_after = d.retry_after_seconds;
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "rate limit of " + std::to_string(limit) + " calls per " +
                            std::to_string(options_.rate_window_seconds) + " s reached for " +
                            principal->RateKey() + "; retry after " +
                            std::to_string(d.retry_after_seconds) + " s");
  }
  return grpc::Status::OK;
}

grpc::Status Gate::Admit(const Route& route, const Credentials& credentials, std::string* request,
                         Admission* admission, int64_t* retry_after) {
  return *AdmitImpl(route, credentials, request, admission, retry_after, false);
}

std::optional<grpc::Status> Gate::AdmitCached(const Route& route, const Credentials& credentials,
                                              std::string* request, Admission* admission,
                                              int64_t* retry_after) {
  // Works on copies, so that a nullopt leaves the request and admission untouched.
  std::string bytes = *request;
  Admission a = *admission;
  bool counted = false;
  auto status = AdmitImpl(route, credentials, &bytes, &a, retry_after, true, &counted);
  if (status) {
    *request = std::move(bytes);
    *admission = std::move(a);
  } else if (counted) {
    // Admit will count the call again.
    limiter_.Refund(a.principal.RateKey(), options_.rate_window_seconds);
  }
  return status;
}

std::optional<grpc::Status> Gate::AdmitImpl(const Route& route, const Credentials& credentials,
                                            std::string* request, Admission* admission,
                                            int64_t* retry_after, bool cached_only, bool* counted) {
  auto authenticated =
      AuthenticateImpl(credentials, &admission->principal, retry_after, cached_only, counted);
  if (!authenticated || !authenticated->ok()) return authenticated;
  auto msg = NewMessage(route.method->input_type());
  if (!msg->ParseFromString(*request)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "request is not a valid " + route.method->input_type()->full_name());
  }
  if (OverwriteStrings(msg.get(), IdentityFields(), admission->principal.username)) {
    *request = msg->SerializeAsString();
  }
  const auto access = route.policy.access;
  const bool scoped = access == Access::kProjectRead || access == Access::kProjectLabel ||
                      access == Access::kProjectManage;
  std::optional<int64_t> project;
  std::optional<Role> membership;
  if (scoped) {
    int64_t pid = 0;
    auto resolved = ResolveProject(route, *msg, *admission, &pid, cached_only);
    if (!resolved || !resolved->ok()) return resolved;
    if (pid > 0) {
      project = pid;
      if (admission->principal.role != Role::kAdmin) {
        if (cached_only) {
          auto cached = authn_.MembershipCached(admission->principal, pid);
          if (!cached) return std::nullopt;
          membership = *cached;
        } else {
          try {
            membership = authn_.Membership(admission->principal, pid);
          } catch (const std::exception& e) {
            spdlog::error("membership lookup failed: {}", e.what());
            return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "gateway database unavailable; retry shortly");
          }
        }
      }
    }
  }
  auto decision = Authorize(&admission->principal, route.policy, project, membership);
  if (!decision.allowed()) {
    // Asked by an object id: answer exactly as for an object that does not exist, so
    // neither the object nor its project is revealed.
    if (decision.code == DecisionCode::kNotFound && !route.policy.id_field.empty()) {
      auto msg = NewMessage(route.method->input_type());
      (void)msg->ParseFromString(*request);
      auto own = route.policy.project_field.empty() ? std::nullopt
                                                    : GetInt(*msg, route.policy.project_field);
      if (!own || *own <= 0) {
        auto id = GetInt(*msg, route.policy.id_field).value_or(0);
        return grpc::Status(grpc::StatusCode::NOT_FOUND, ObjectName(route.policy.id_field) + " " +
                                                             std::to_string(id) + " not found");
      }
    }
    return grpc::Status(CodeOf(decision.code), decision.message);
  }
  admission->project_id = project.value_or(0);
  return grpc::Status::OK;
}

std::optional<grpc::Status> Gate::ResolveProject(const Route& route, const pb::Message& request,
                                                 const Admission& admission, int64_t* project_id,
                                                 bool cached_only) {
  const auto& p = route.policy;
  if (!p.project_field.empty()) {
    auto v = GetInt(request, p.project_field);
    if (v && *v > 0) {
      *project_id = *v;
      return grpc::Status::OK;
    }
  }
  if (p.id_field.empty()) return grpc::Status::OK;
  auto id = GetInt(request, p.id_field);
  if (!id || *id <= 0) return grpc::Status::OK;
  const std::string key = p.id_field + ":" + std::to_string(*id);
  {
    std::lock_guard lock(mu_);
    auto it = object_project_.find(key);
    if (it != object_project_.end()) {
      *project_id = it->second;
      return grpc::Status::OK;
    }
  }
  if (cached_only) return std::nullopt;  // asking the backend is a round trip
  std::string lf = p.lookup_method.substr(1);
  lf[lf.find('/')] = '.';
  const auto* lm = pb::DescriptorPool::generated_pool()->FindMethodByName(lf);
  auto lookup = NewMessage(lm->input_type());
  SetInt(lookup.get(), p.id_field, *id);
  std::string answer;
  auto status =
      CallUnary(*route.backend, p.lookup_method, lookup->SerializeAsString(), &answer, &admission);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
      status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        ObjectName(p.id_field) + " " + std::to_string(*id) + " not found");
  }
  if (!status.ok()) return status;
  auto out = NewMessage(lm->output_type());
  if (!out->ParseFromString(answer)) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        p.lookup_method + " answered an unreadable message");
  }
  auto pid = GetInt(*out, "project_id");
  if (!pid || *pid <= 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        ObjectName(p.id_field) + " " + std::to_string(*id) + " not found");
  }
  Learn(p.id_field, *id, *pid);
  *project_id = *pid;
  return grpc::Status::OK;
}

void Gate::Learn(const std::string& kind, int64_t id, int64_t project_id) {
  std::lock_guard lock(mu_);
  if (object_project_.size() > 200000) object_project_.clear();
  object_project_[kind + ":" + std::to_string(id)] = project_id;
}

grpc::Status Gate::CheckNext(const Route& route, const Admission& admission,
                             const std::string& request) const {
  if (route.policy.project_field.empty() || admission.project_id == 0) return grpc::Status::OK;
  auto msg = NewMessage(route.method->input_type());
  if (!msg->ParseFromString(request)) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "request is not a valid " + route.method->input_type()->full_name()};
  }
  auto v = GetInt(*msg, route.policy.project_field);
  if (v && *v != 0 && *v != admission.project_id) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            route.policy.project_field + ": a stream must stay in one project"};
  }
  return grpc::Status::OK;
}

grpc::Status Gate::AfterResponse(const Route& route, const Admission& admission,
                                 std::string* response) {
  const auto hook = route.policy.hook;
  if (hook == ResponseHook::kNone) return grpc::Status::OK;
  if (hook == ResponseHook::kFilterProjects && admission.principal.role == Role::kAdmin) {
    return grpc::Status::OK;
  }
  auto msg = NewMessage(route.method->output_type());
  if (!msg->ParseFromString(*response)) {
    return {grpc::StatusCode::INTERNAL, route.policy.method + " answered an unreadable message"};
  }
  try {
    switch (hook) {
      case ResponseHook::kNone:
        break;
      case ResponseHook::kFilterProjects: {
        FilterByProject(msg.get(), authn_.ProjectsOf(admission.principal));
        *response = msg->SerializeAsString();
        break;
      }
      case ResponseHook::kRecordOwner: {
        auto pid = CreatedProjectId(*msg);
        if (pid) {
          store_.RecordOwner(*pid, admission.principal.user_id);
          authn_.ForgetMembership(admission.principal.user_id, *pid);
        }
        break;
      }
      case ResponseHook::kLearnIds:
        if (admission.project_id > 0) {
          for (const auto& [kind, id] : CollectObjectIds(*msg)) {
            Learn(kind, id, admission.project_id);
          }
        }
        break;
    }
  } catch (const std::exception& e) {
    spdlog::error("{}: after-response step failed: {}", route.policy.method, e.what());
    return {grpc::StatusCode::UNAVAILABLE,
            "the call succeeded but the gateway could not record its result (database "
            "unavailable); an admin can add you to the project"};
  }
  return grpc::Status::OK;
}

bool Gate::AfterResponseMayBlock(const Route& route, const Admission& admission) const {
  switch (route.policy.hook) {
    case ResponseHook::kFilterProjects:
      return admission.principal.role != Role::kAdmin;  // the caller's projects
    case ResponseHook::kRecordOwner:
      return true;  // writes the owner
    case ResponseHook::kNone:
    case ResponseHook::kLearnIds:
      return false;
  }
  return true;
}

grpc::Status Gate::MapBackendStatus(const Backend& backend, const grpc::Status& status) const {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return {grpc::StatusCode::UNAVAILABLE, backend.name + " service unavailable at " +
                                                 backend.address + ": " + status.error_message()};
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return {grpc::StatusCode::DEADLINE_EXCEEDED,
              backend.name + " service at " + backend.address + " did not answer in time"};
    default:
      return status;
  }
}

void Gate::PrepareContext(grpc::ClientContext* context, const Route& route,
                          const Admission& admission,
                          std::chrono::system_clock::time_point caller_deadline) const {
  const bool streaming = route.client_streaming || route.server_streaming;
  auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(streaming ? options_.stream_deadline_ms : options_.deadline_ms);
  context->set_deadline(std::min(deadline, caller_deadline));
  context->AddMetadata("x-request-id", admission.request_id);
  context->AddMetadata("x-labelloop-user", admission.principal.username);
}

grpc::Status Gate::CallUnary(Backend& backend, const std::string& method,
                             const std::string& request, std::string* response,
                             const Admission* admission) const {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options_.deadline_ms));
  if (admission != nullptr) {
    ctx.AddMetadata("x-request-id", admission->request_id);
    ctx.AddMetadata("x-labelloop-user", admission->principal.username);
  }
  // A blocking call on this thread's own completion queue: no hand-off to a gRPC thread
  // and back (the callers, HTTP workers and the project lookup, wait for the answer anyway).
  grpc::ByteBuffer req = ToBuffer(request);
  grpc::ByteBuffer resp;
  grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      backend.channel.get(),
      grpc::internal::RpcMethod(method.c_str(), grpc::internal::RpcMethod::NORMAL_RPC), &ctx, req,
      &resp);
  if (!status.ok()) return MapBackendStatus(backend, status);
  *response = ToString(resp);
  return grpc::Status::OK;
}

}  // namespace labelloop::gateway
