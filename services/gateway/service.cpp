#include "services/gateway/service.hpp"

#include <spdlog/spdlog.h>

#include <ctime>

#include "common/grpc_server/request_context.hpp"
#include "services/gateway/password.hpp"

namespace labelloop::gateway {
namespace {

using grpc::Status;
using grpc::StatusCode;

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

// Runs a handler body; a library exception becomes UNAVAILABLE (the database) rather
// than escaping into gRPC.
template <typename Fn>
Status Guard(const char* what, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", what, e.what());
    return {StatusCode::UNAVAILABLE, std::string(what) + ": gateway database unavailable, retry"};
  }
}

void ToProto(const UserRow& u, v1::User* out) {
  out->set_id(u.id);
  out->set_username(u.username);
  out->set_role(static_cast<v1::Role>(static_cast<int>(u.role)));
  out->set_disabled(u.disabled);
  out->mutable_created_at()->set_seconds(u.created_at);
}

void ToProto(const ApiKeyRow& k, v1::ApiKey* out) {
  out->set_id(k.id);
  out->set_name(k.name);
  out->set_user_id(k.user_id);
  out->set_prefix(k.prefix);
  out->mutable_created_at()->set_seconds(k.created_at);
  out->set_revoked(k.revoked);
}

std::string Meta(const grpc::ServerContext& ctx, const char* key) {
  auto it = ctx.client_metadata().find(key);
  if (it == ctx.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

GatewayServiceImpl::GatewayServiceImpl(std::function<void(v1::ServiceInfo*)> fill_info,
                                       Store& store, const TokenSigner& signer, Gate& gate,
                                       RateLimiter& limiter, EventHub& hub, AuthSettings settings)
    : fill_info_(std::move(fill_info)),
      store_(store),
      signer_(signer),
      gate_(gate),
      limiter_(limiter),
      hub_(hub),
      settings_(std::move(settings)),
      dummy_hash_(HashPassword(RandomToken(16))) {}

std::string GatewayServiceImpl::ClientAddress(const grpc::ServerContext& context) const {
  if (!settings_.internal_secret.empty() &&
      Meta(context, "x-labelloop-internal") == settings_.internal_secret) {
    auto ip = Meta(context, "x-labelloop-client-ip");
    if (!ip.empty()) return ip;
  }
  // "ipv4:127.0.0.1:5555" / "ipv6:[::1]:5555" → the address without the port.
  std::string peer = context.peer();
  auto first = peer.find(':');
  auto last = peer.rfind(':');
  if (first != std::string::npos && last != std::string::npos && last > first) {
    return peer.substr(first + 1, last - first - 1);
  }
  return peer;
}

Status GatewayServiceImpl::Caller(grpc::ServerContext* context, Principal* caller) {
  int64_t retry_after = 0;
  Status s = gate_.Authenticate({Meta(*context, "authorization"), Meta(*context, "x-api-key")},
                                caller, &retry_after);
  if (retry_after > 0) context->AddTrailingMetadata("retry-after", std::to_string(retry_after));
  return s;
}

Status GatewayServiceImpl::CanManage(const Principal& caller, int64_t project_id) {
  if (project_id <= 0) return {StatusCode::INVALID_ARGUMENT, "project_id: required"};
  if (caller.role == Role::kAdmin) return Status::OK;
  auto m = gate_.authn().Membership(caller, project_id);
  if (!m) return {StatusCode::NOT_FOUND, "project " + std::to_string(project_id) + " not found"};
  if (*m != Role::kManager || !AtLeast(caller.role, Role::kManager)) {
    return {StatusCode::PERMISSION_DENIED,
            "managing members needs the manager role in project " + std::to_string(project_id)};
  }
  return Status::OK;
}

Status GatewayServiceImpl::CanRead(const Principal& caller, int64_t project_id) {
  if (project_id <= 0) return {StatusCode::INVALID_ARGUMENT, "project_id: required"};
  if (caller.role == Role::kAdmin) return Status::OK;
  if (!gate_.authn().Membership(caller, project_id)) {
    return {StatusCode::NOT_FOUND, "project " + std::to_string(project_id) + " not found"};
  }
  return Status::OK;
}

Status GatewayServiceImpl::IssueTokens(const UserRow& user, v1::LoginResponse* reply) {
  const int64_t now = Now();
  AccessClaims claims{.user_id = user.id,
                      .username = user.username,
                      .role = user.role,
                      .issued_at = now,
                      .expires_at = now + settings_.access_ttl_seconds};
  reply->set_access_token(signer_.Issue(claims));
  reply->mutable_access_expires_at()->set_seconds(claims.expires_at);
  const std::string refresh = NewRefreshToken();
  const int64_t refresh_exp = now + settings_.refresh_ttl_seconds;
  store_.InsertRefreshToken(HashSecret(refresh), user.id, refresh_exp);
  reply->set_refresh_token(refresh);
  reply->mutable_refresh_expires_at()->set_seconds(refresh_exp);
  ToProto(user, reply->mutable_user());
  return Status::OK;
}

Status GatewayServiceImpl::GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest*,
                                   v1::ServiceInfo* reply) {
  grpc_server::RequestScope scope(context);
  fill_info_(reply);
  return Status::OK;
}

Status GatewayServiceImpl::Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                                 v1::LoginResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("Login", [&]() -> Status {
    if (request->username().empty() || request->password().empty()) {
      return {StatusCode::INVALID_ARGUMENT, "username and password: both required"};
    }
    const std::string bucket = "login:" + request->username() + "@" + ClientAddress(*context);
    auto d = limiter_.Hit(bucket, settings_.login_attempts, settings_.login_window_seconds);
    if (!d.allowed) {
      context->AddTrailingMetadata("retry-after", std::to_string(d.retry_after_seconds));
      spdlog::warn("login attempts for '{}' exceeded the limit", request->username());
      return {StatusCode::RESOURCE_EXHAUSTED, "too many login attempts for '" +
                                                  request->username() + "'; retry after " +
                                                  std::to_string(d.retry_after_seconds) + " s"};
    }
    auto user = store_.FindUserByName(request->username());
    const bool ok = user ? VerifyPassword(user->password_hash, request->password())
                         : (VerifyPassword(dummy_hash_, request->password()), false);
    if (!ok) {
      spdlog::info("login failed for '{}'", request->username());
      return {StatusCode::UNAUTHENTICATED, "wrong username or password"};
    }
    if (user->disabled) return {StatusCode::PERMISSION_DENIED, "this account is disabled"};
    spdlog::info("login of '{}' ({})", user->username, RoleName(user->role));
    return IssueTokens(*user, reply);
  });
}

Status GatewayServiceImpl::Refresh(grpc::ServerContext* context, const v1::RefreshRequest* request,
                                   v1::LoginResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("Refresh", [&]() -> Status {
    if (request->refresh_token().empty()) {
      return {StatusCode::INVALID_ARGUMENT, "refresh_token: required"};
    }
    int64_t user_id = 0;
    switch (store_.SpendRefreshToken(HashSecret(request->refresh_token()), &user_id)) {
      case RefreshOutcome::kOk:
        break;
      case RefreshOutcome::kUnknown:
        return {StatusCode::UNAUTHENTICATED, "refresh token is unknown; log in again"};
      case RefreshOutcome::kExpired:
        return {StatusCode::UNAUTHENTICATED, "refresh token has expired; log in again"};
      case RefreshOutcome::kReused:
        spdlog::warn(
            "a spent refresh token of user {} was presented again; all its sessions "
            "are ended",
            user_id);
        return {StatusCode::UNAUTHENTICATED,
                "refresh token was already used; every session of this user is ended, log in "
                "again"};
    }
    auto user = store_.GetUser(user_id);
    if (!user || user->disabled) {
      return {StatusCode::UNAUTHENTICATED, "this account no longer exists or is disabled"};
    }
    return IssueTokens(*user, reply);
  });
}

Status GatewayServiceImpl::Logout(grpc::ServerContext* context, const v1::RefreshRequest* request,
                                  v1::LogoutResponse*) {
  grpc_server::RequestScope scope(context);
  return Guard("Logout", [&]() -> Status {
    int64_t user_id = 0;
    (void)store_.SpendRefreshToken(HashSecret(request->refresh_token()), &user_id);
    return Status::OK;
  });
}

Status GatewayServiceImpl::WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest*,
                                  v1::User* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("WhoAmI", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    auto user = store_.GetUser(caller.user_id);
    if (!user) return {StatusCode::UNAUTHENTICATED, "this account no longer exists"};
    ToProto(*user, reply);
    reply->set_api_key_id(caller.api_key_id);
    return Status::OK;
  });
}

Status GatewayServiceImpl::CreateUser(grpc::ServerContext* context,
                                      const v1::CreateUserRequest* request, v1::User* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("CreateUser", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    if (caller.role != Role::kAdmin) {
      return {StatusCode::PERMISSION_DENIED, "only an admin may create users"};
    }
    if (auto e = CheckUsername(request->username()); !e.empty()) {
      return {StatusCode::INVALID_ARGUMENT, e};
    }
    if (auto e = CheckNewPassword(request->password()); !e.empty()) {
      return {StatusCode::INVALID_ARGUMENT, e};
    }
    auto role = RoleFromInt(request->role());
    if (!role) {
      return {StatusCode::INVALID_ARGUMENT,
              "role: ROLE_ADMIN, ROLE_MANAGER or ROLE_ANNOTATOR required"};
    }
    auto user = store_.CreateUser(request->username(), HashPassword(request->password()), *role);
    if (!user) {
      return {StatusCode::ALREADY_EXISTS, "username '" + request->username() + "' is taken"};
    }
    spdlog::info("user '{}' created as {} by '{}'", user->username, RoleName(*role),
                 caller.username);
    ToProto(*user, reply);
    return Status::OK;
  });
}

Status GatewayServiceImpl::ListUsers(grpc::ServerContext* context, const v1::ListUsersRequest*,
                                     v1::ListUsersResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("ListUsers", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    // Managers need the list to add members; annotators do not.
    if (!AtLeast(caller.role, Role::kManager)) {
      return {StatusCode::PERMISSION_DENIED, "listing users needs the manager role"};
    }
    for (const auto& u : store_.ListUsers()) ToProto(u, reply->add_users());
    return Status::OK;
  });
}

Status GatewayServiceImpl::SetUserDisabled(grpc::ServerContext* context,
                                           const v1::SetUserDisabledRequest* request,
                                           v1::User* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("SetUserDisabled", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    if (caller.role != Role::kAdmin) {
      return {StatusCode::PERMISSION_DENIED, "only an admin may disable users"};
    }
    if (request->user_id() == caller.user_id && request->disabled()) {
      return {StatusCode::FAILED_PRECONDITION, "an admin cannot disable their own account"};
    }
    auto user = store_.SetDisabled(request->user_id(), request->disabled());
    if (!user) return {StatusCode::NOT_FOUND, "user " + std::to_string(request->user_id())};
    gate_.authn().ForgetAllApiKeys();
    gate_.authn().ForgetUser(user->id);
    ToProto(*user, reply);
    return Status::OK;
  });
}

Status GatewayServiceImpl::CreateApiKey(grpc::ServerContext* context,
                                        const v1::CreateApiKeyRequest* request,
                                        v1::CreateApiKeyResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("CreateApiKey", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    if (request->name().empty() || request->name().size() > 200) {
      return {StatusCode::INVALID_ARGUMENT, "name: 1 to 200 characters (what the key is for)"};
    }
    const int64_t user_id = request->user_id() == 0 ? caller.user_id : request->user_id();
    if (user_id != caller.user_id && caller.role != Role::kAdmin) {
      return {StatusCode::PERMISSION_DENIED, "only an admin may create keys for other users"};
    }
    if (caller.api_key_id != 0) {
      return {StatusCode::PERMISSION_DENIED, "an API key cannot create API keys; sign in"};
    }
    if (!store_.GetUser(user_id)) {
      return {StatusCode::NOT_FOUND, "user " + std::to_string(user_id) + " not found"};
    }
    const std::string key = NewApiKey();
    auto row = store_.CreateApiKey(user_id, request->name(), HashSecret(key), ApiKeyPrefix(key));
    ToProto(row, reply->mutable_api_key());
    reply->set_key(key);
    spdlog::info("API key {} ('{}') created for user {}", row.id, row.name, user_id);
    return Status::OK;
  });
}

Status GatewayServiceImpl::ListApiKeys(grpc::ServerContext* context,
                                       const v1::ListApiKeysRequest* request,
                                       v1::ListApiKeysResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("ListApiKeys", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    const int64_t user_id = request->user_id() == 0 ? caller.user_id : request->user_id();
    if (user_id != caller.user_id && caller.role != Role::kAdmin) {
      return {StatusCode::PERMISSION_DENIED, "only an admin may list other users' keys"};
    }
    for (const auto& k : store_.ListApiKeys(user_id)) ToProto(k, reply->add_api_keys());
    return Status::OK;
  });
}

Status GatewayServiceImpl::RevokeApiKey(grpc::ServerContext* context,
                                        const v1::RevokeApiKeyRequest* request,
                                        v1::RevokeApiKeyResponse*) {
  grpc_server::RequestScope scope(context);
  return Guard("RevokeApiKey", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    auto key = store_.GetApiKey(request->api_key_id());
    if (!key || (key->user_id != caller.user_id && caller.role != Role::kAdmin)) {
      return {StatusCode::NOT_FOUND,
              "API key " + std::to_string(request->api_key_id()) + " not found"};
    }
    store_.RevokeApiKey(key->id);
    gate_.authn().ForgetAllApiKeys();
    spdlog::info("API key {} revoked by '{}'", key->id, caller.username);
    return Status::OK;
  });
}

Status GatewayServiceImpl::AddMember(grpc::ServerContext* context,
                                     const v1::AddMemberRequest* request, v1::Member* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("AddMember", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    s = CanManage(caller, request->project_id());
    if (!s.ok()) return s;
    auto role = RoleFromInt(request->role());
    if (!role || *role == Role::kAdmin) {
      return {StatusCode::INVALID_ARGUMENT, "role: ROLE_MANAGER or ROLE_ANNOTATOR"};
    }
    std::optional<UserRow> user = request->user_id() != 0
                                      ? store_.GetUser(request->user_id())
                                      : store_.FindUserByName(request->username());
    if (!user) return {StatusCode::NOT_FOUND, "user not found (give user_id or username)"};
    if (*role == Role::kManager && !AtLeast(user->role, Role::kManager)) {
      return {StatusCode::FAILED_PRECONDITION,
              "user '" + user->username + "' is an annotator and cannot manage a project"};
    }
    store_.UpsertMember(request->project_id(), user->id, *role);
    gate_.authn().ForgetMembership(user->id, request->project_id());
    reply->set_project_id(request->project_id());
    reply->set_user_id(user->id);
    reply->set_username(user->username);
    reply->set_role(static_cast<v1::Role>(static_cast<int>(*role)));
    spdlog::info("'{}' added to project {} as {} by '{}'", user->username, request->project_id(),
                 RoleName(*role), caller.username);
    return Status::OK;
  });
}

Status GatewayServiceImpl::RemoveMember(grpc::ServerContext* context,
                                        const v1::RemoveMemberRequest* request,
                                        v1::RemoveMemberResponse*) {
  grpc_server::RequestScope scope(context);
  return Guard("RemoveMember", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    s = CanManage(caller, request->project_id());
    if (!s.ok()) return s;
    if (!store_.RemoveMember(request->project_id(), request->user_id())) {
      return {StatusCode::NOT_FOUND, "user " + std::to_string(request->user_id()) +
                                         " is not a member of project " +
                                         std::to_string(request->project_id())};
    }
    gate_.authn().ForgetMembership(request->user_id(), request->project_id());
    return Status::OK;
  });
}

Status GatewayServiceImpl::ListMembers(grpc::ServerContext* context,
                                       const v1::ListMembersRequest* request,
                                       v1::ListMembersResponse* reply) {
  grpc_server::RequestScope scope(context);
  return Guard("ListMembers", [&]() -> Status {
    Principal caller;
    auto s = Caller(context, &caller);
    if (!s.ok()) return s;
    s = CanRead(caller, request->project_id());
    if (!s.ok()) return s;
    for (const auto& m : store_.ListMembers(request->project_id())) {
      auto* out = reply->add_members();
      out->set_project_id(m.project_id);
      out->set_user_id(m.user_id);
      out->set_username(m.username);
      out->set_role(static_cast<v1::Role>(static_cast<int>(m.role)));
      out->set_owner(m.owner);
    }
    return Status::OK;
  });
}

Status GatewayServiceImpl::WatchProject(grpc::ServerContext* context,
                                        const v1::WatchProjectRequest* request,
                                        grpc::ServerWriter<v1::ProjectEvent>* writer) {
  grpc_server::RequestScope scope(context);
  Principal caller;
  Status s = Guard("WatchProject", [&]() -> Status {
    auto st = Caller(context, &caller);
    if (!st.ok()) return st;
    return CanRead(caller, request->project_id());
  });
  if (!s.ok()) return s;
  std::set<std::string> types(request->types().begin(), request->types().end());
  auto watcher = hub_.Watch(request->project_id(), types);
  spdlog::info("'{}' watches project {}", caller.username, request->project_id());
  // Headers now, so the caller knows the watch is in place before the first event.
  writer->SendInitialMetadata();
  ProjectEventData ev;
  while (!context->IsCancelled()) {
    auto next = watcher->Wait(std::chrono::milliseconds(500), &ev);
    if (next == EventHub::Watcher::Next::kClosed) break;
    if (next == EventHub::Watcher::Next::kTimeout) continue;
    v1::ProjectEvent out;
    out.set_type(ev.type);
    out.set_project_id(ev.project_id);
    out.set_json(ev.json);
    out.mutable_received_at()->set_seconds(ev.received_at_ms / 1000);
    out.mutable_received_at()->set_nanos(static_cast<int32_t>(ev.received_at_ms % 1000) * 1000000);
    if (!writer->Write(out)) break;
  }
  hub_.Unwatch(watcher);
  return context->IsCancelled()
             ? Status(StatusCode::CANCELLED, "watch cancelled")
             : Status(StatusCode::UNAVAILABLE, "the gateway is shutting down; watch again");
}

}  // namespace labelloop::gateway
