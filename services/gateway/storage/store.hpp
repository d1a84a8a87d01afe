// The gateway's PostgreSQL tables (schema `gateway`): users, refresh tokens, API keys,
// project owners and members. All SQL of the gateway lives here. Methods throw
// pqxx/pool exceptions; the gRPC adapter turns them into UNAVAILABLE/INTERNAL.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/gateway/roles.hpp"

namespace labelloop::gateway {

struct UserRow {
  int64_t id = 0;
  std::string username;
  std::string password_hash;
  Role role = Role::kAnnotator;
  bool disabled = false;
  int64_t created_at = 0;  // unix seconds
};

struct ApiKeyRow {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string name;
  std::string prefix;
  int64_t created_at = 0;
  bool revoked = false;
};

struct MemberRow {
  int64_t project_id = 0;
  int64_t user_id = 0;
  std::string username;
  Role role = Role::kAnnotator;
  bool owner = false;
};

enum class RefreshOutcome { kOk, kUnknown, kExpired, kReused };

class Store {
 public:
  explicit Store(pg::Pool& pool);

  // nullopt when the username is taken.
  std::optional<UserRow> CreateUser(const std::string& username, const std::string& hash,
                                    Role role);
  std::optional<UserRow> FindUserByName(const std::string& username);
  std::optional<UserRow> GetUser(int64_t id);
  std::vector<UserRow> ListUsers();
  std::optional<UserRow> SetDisabled(int64_t id, bool disabled);

  void InsertRefreshToken(const std::string& hash, int64_t user_id, int64_t expires_at);
  // Spends a refresh token once. A token presented after it was spent is a sign of
  // theft: every refresh token of that user is spent (kReused).
  RefreshOutcome SpendRefreshToken(const std::string& hash, int64_t* user_id);

  ApiKeyRow CreateApiKey(int64_t user_id, const std::string& name, const std::string& hash,
                         const std::string& prefix);
  // The key and its user, when the key exists and is not revoked.
  std::optional<std::pair<ApiKeyRow, UserRow>> FindApiKey(const std::string& hash);
  std::vector<ApiKeyRow> ListApiKeys(int64_t user_id);
  std::optional<ApiKeyRow> GetApiKey(int64_t id);
  bool RevokeApiKey(int64_t id);

  // Records the creator of a project as its owner and a manager member.
  void RecordOwner(int64_t project_id, int64_t user_id);
  std::optional<Role> Membership(int64_t user_id, int64_t project_id);
  std::set<int64_t> ProjectsOf(int64_t user_id);
  void UpsertMember(int64_t project_id, int64_t user_id, Role role);
  bool RemoveMember(int64_t project_id, int64_t user_id);
  std::vector<MemberRow> ListMembers(int64_t project_id);

 private:
  pg::Pool& pool_;
};

}  // namespace labelloop::gateway
