// gRPC adapter of the gateway's own API (GatewayService): login and tokens, users, API
// keys, project membership and WatchProject. The proxied services are in proxy.hpp.
#pragma once

#include <functional>
#include <string>

#include "labelloop/v1/gateway.grpc.pb.h"
#include "services/gateway/events.hpp"
#include "services/gateway/gate.hpp"
#include "services/gateway/storage/store.hpp"
#include "services/gateway/tokens.hpp"

namespace labelloop::gateway {

struct AuthSettings {
  int64_t access_ttl_seconds = 900;
  int64_t refresh_ttl_seconds = 30 * 86400;
  int64_t login_attempts = 10;  // per username + client address and window
  int64_t login_window_seconds = 300;
  // The HTTP layer calls this service over loopback and passes the real client address
  // in x-labelloop-client-ip together with this per-process secret.
  std::string internal_secret;
};

class GatewayServiceImpl final : public v1::GatewayService::Service {
 public:
  GatewayServiceImpl(std::function<void(v1::ServiceInfo*)> fill_info, Store& store,
                     const TokenSigner& signer, Gate& gate, RateLimiter& limiter, EventHub& hub,
                     AuthSettings settings);

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;
  grpc::Status Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                     v1::LoginResponse* reply) override;
  grpc::Status Refresh(grpc::ServerContext* context, const v1::RefreshRequest* request,
                       v1::LoginResponse* reply) override;
  grpc::Status Logout(grpc::ServerContext* context, const v1::RefreshRequest* request,
                      v1::LogoutResponse* reply) override;
  grpc::Status WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest* request,
                      v1::User* reply) override;
  grpc::Status CreateUser(grpc::ServerContext* context, const v1::CreateUserRequest* request,
                          v1::User* reply) override;
  grpc::Status ListUsers(grpc::ServerContext* context, const v1::ListUsersRequest* request,
                         v1::ListUsersResponse* reply) override;
  grpc::Status SetUserDisabled(grpc::ServerContext* context,
                               const v1::SetUserDisabledRequest* request, v1::User* reply) override;
  grpc::Status CreateApiKey(grpc::ServerContext* context, const v1::CreateApiKeyRequest* request,
                            v1::CreateApiKeyResponse* reply) override;
  grpc::Status ListApiKeys(grpc::ServerContext* context, const v1::ListApiKeysRequest* request,
                           v1::ListApiKeysResponse* reply) override;
  grpc::Status RevokeApiKey(grpc::ServerContext* context, const v1::RevokeApiKeyRequest* request,
                            v1::RevokeApiKeyResponse* reply) override;
  grpc::Status AddMember(grpc::ServerContext* context, const v1::AddMemberRequest* request,
                         v1::Member* reply) override;
  grpc::Status RemoveMember(grpc::ServerContext* context, const v1::RemoveMemberRequest* request,
                            v1::RemoveMemberResponse* reply) override;
  grpc::Status ListMembers(grpc::ServerContext* context, const v1::ListMembersRequest* request,
                           v1::ListMembersResponse* reply) override;
  grpc::Status WatchProject(grpc::ServerContext* context, const v1::WatchProjectRequest* request,
                            grpc::ServerWriter<v1::ProjectEvent>* writer) override;

 private:
  // Authenticates and rate-limits; fills *caller.
  grpc::Status Caller(grpc::ServerContext* context, Principal* caller);
  // Admin, or a manager of the project.
  grpc::Status CanManage(const Principal& caller, int64_t project_id);
  grpc::Status CanRead(const Principal& caller, int64_t project_id);
  grpc::Status IssueTokens(const UserRow& user, v1::LoginResponse* reply);
  std::string ClientAddress(const grpc::ServerContext& context) const;

  std::function<void(v1::ServiceInfo*)> fill_info_;
  Store& store_;
  const TokenSigner& signer_;
  Gate& gate_;
  RateLimiter& limiter_;
  EventHub& hub_;
  AuthSettings settings_;
  std::string dummy_hash_;  // verified against when the user does not exist (equal timing)
};

}  // namespace labelloop::gateway
