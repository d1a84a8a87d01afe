#include "services/gateway/storage/store.hpp"

namespace labelloop::gateway {
namespace {

constexpr const char* kUserCols =
    "id, username, password_hash, role, disabled, extract(epoch from created_at)::bigint";

UserRow ToUser(const pqxx::row& r) {
  UserRow u;
  u.id = r[0].as<int64_t>();
  u.username = r[1].as<std::string>();
  u.password_hash = r[2].as<std::string>();
  u.role = ParseRole(r[3].as<std::string>()).value_or(Role::kAnnotator);
  u.disabled = r[4].as<bool>();
  u.created_at = r[5].as<int64_t>();
  return u;
}

constexpr const char* kKeyCols =
    "k.id, k.user_id, k.name, k.prefix, extract(epoch from k.created_at)::bigint, "
    "k.revoked_at IS NOT NULL";

ApiKeyRow ToKey(const pqxx::row& r) {
  ApiKeyRow k;
  k.id = r[0].as<int64_t>();
  k.user_id = r[1].as<int64_t>();
  k.name = r[2].as<std::string>();
  k.prefix = r[3].as<std::string>();
  k.created_at = r[4].as<int64_t>();
  k.revoked = r[5].as<bool>();
  return k;
}

}  // namespace

Store::Store(pg::Pool& pool) : pool_(pool) {}

std::optional<UserRow> Store::CreateUser(const std::string& username, const std::string& hash,
                                         Role role) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<UserRow> {
    pqxx::work tx(c);
    auto r = tx.exec_params(std::string("INSERT INTO gateway.users (username, password_hash, "
                                        "role) VALUES ($1, $2, $3) ON CONFLICT (username) DO "
                                        "NOTHING RETURNING ") +
                                kUserCols,
                            username, hash, std::string(RoleName(role)));
    tx.commit();
    if (r.empty()) return std::nullopt;
    return ToUser(r[0]);
  });
}

std::optional<UserRow> Store::FindUserByName(const std::string& username) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<UserRow> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        std::string("SELECT ") + kUserCols + " FROM gateway.users WHERE username = $1", username);
    if (r.empty()) return std::nullopt;
    return ToUser(r[0]);
  });
}

std::optional<UserRow> Store::GetUser(int64_t id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<UserRow> {
    pqxx::nontransaction tx(c);  // one statement: no BEGIN/COMMIT round trips
    auto r = tx.exec_params(
        std::string("SELECT ") + kUserCols + " FROM gateway.users WHERE id = $1", id);
    if (r.empty()) return std::nullopt;
    return ToUser(r[0]);
  });
}

std::vector<UserRow> Store::ListUsers() {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec(std::string("SELECT ") + kUserCols + " FROM gateway.users ORDER BY id");
    std::vector<UserRow> out;
    for (const auto& row : r) out.push_back(ToUser(row));
    return out;
  });
}

std::optional<UserRow> Store::SetDisabled(int64_t id, bool disabled) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<UserRow> {
    pqxx::work tx(c);
    auto r = tx.exec_params(std::string("UPDATE gateway.users SET disabled = $2 WHERE id = $1 "
                                        "RETURNING ") +
                                kUserCols,
                            id, disabled);
    if (disabled) {
      tx.exec_params(
          "UPDATE gateway.refresh_tokens SET spent_at = now() WHERE user_id = $1 AND "
          "spent_at IS NULL",
          id);
    }
    tx.commit();
    if (r.empty()) return std::nullopt;
    return ToUser(r[0]);
  });
}

void Store::InsertRefreshToken(const std::string& hash, int64_t user_id, int64_t expires_at) {
  pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO gateway.refresh_tokens (token_hash, user_id, expires_at) "
        "VALUES ($1, $2, to_timestamp($3))",
        hash, user_id, expires_at);
    tx.commit();
  });
}

RefreshOutcome Store::SpendRefreshToken(const std::string& hash, int64_t* user_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "SELECT user_id, spent_at IS NOT NULL, expires_at <= now() FROM gateway.refresh_tokens "
        "WHERE token_hash = $1 FOR UPDATE",
        hash);
    if (r.empty()) return RefreshOutcome::kUnknown;
    *user_id = r[0][0].as<int64_t>();
    if (r[0][1].as<bool>()) {
      tx.exec_params(
          "UPDATE gateway.refresh_tokens SET spent_at = now() WHERE user_id = $1 AND "
          "spent_at IS NULL",
          *user_id);
      tx.commit();
      return RefreshOutcome::kReused;
    }
    tx.exec_params("UPDATE gateway.refresh_tokens SET spent_at = now() WHERE token_hash = $1",
                   hash);
    tx.commit();
    return r[0][2].as<bool>() ? RefreshOutcome::kExpired : RefreshOutcome::kOk;
  });
}

ApiKeyRow Store::CreateApiKey(int64_t user_id, const std::string& name, const std::string& hash,
                              const std::string& prefix) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(std::string("INSERT INTO gateway.api_keys AS k (user_id, name, "
                                        "key_hash, prefix) VALUES ($1, $2, $3, $4) RETURNING ") +
                                kKeyCols,
                            user_id, name, hash, prefix);
    tx.commit();
    return ToKey(r[0]);
  });
}

std::optional<std::pair<ApiKeyRow, UserRow>> Store::FindApiKey(const std::string& hash) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<std::pair<ApiKeyRow, UserRow>> {
    pqxx::nontransaction tx(c);  // one statement: no BEGIN/COMMIT round trips
    auto r = tx.exec_params(std::string("SELECT ") + kKeyCols +
                                ", u.id, u.username, u.password_hash, u.role, u.disabled, "
                                "extract(epoch from u.created_at)::bigint FROM gateway.api_keys "
                                "k JOIN gateway.users u ON u.id = k.user_id WHERE k.key_hash = $1 "
                                "AND k.revoked_at IS NULL",
                            hash);
    if (r.empty()) return std::nullopt;
    ApiKeyRow key = ToKey(r[0]);
    UserRow u;
    u.id = r[0][6].as<int64_t>();
    u.username = r[0][7].as<std::string>();
    u.role = ParseRole(r[0][9].as<std::string>()).value_or(Role::kAnnotator);
    u.disabled = r[0][10].as<bool>();
    u.created_at = r[0][11].as<int64_t>();
    return std::make_pair(key, u);
  });
}

std::vector<ApiKeyRow> Store::ListApiKeys(int64_t user_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(std::string("SELECT ") + kKeyCols +
                                " FROM gateway.api_keys k WHERE k.user_id = $1 ORDER BY k.id",
                            user_id);
    std::vector<ApiKeyRow> out;
    for (const auto& row : r) out.push_back(ToKey(row));
    return out;
  });
}

std::optional<ApiKeyRow> Store::GetApiKey(int64_t id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<ApiKeyRow> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        std::string("SELECT ") + kKeyCols + " FROM gateway.api_keys k WHERE k.id = $1", id);
    if (r.empty()) return std::nullopt;
    return ToKey(r[0]);
  });
}

bool Store::RevokeApiKey(int64_t id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "UPDATE gateway.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", id);
    tx.commit();
    return r.affected_rows() > 0;
  });
}

void Store::RecordOwner(int64_t project_id, int64_t user_id) {
  pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO gateway.project_owners (project_id, owner_user_id) VALUES ($1, "
        "$2) ON CONFLICT (project_id) DO NOTHING",
        project_id, user_id);
    tx.exec_params(
        "INSERT INTO gateway.project_members (project_id, user_id, role) VALUES ($1, "
        "$2, 'manager') ON CONFLICT (project_id, user_id) DO UPDATE SET role = "
        "'manager'",
        project_id, user_id);
    tx.commit();
  });
}

std::optional<Role> Store::Membership(int64_t user_id, int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<Role> {
    pqxx::nontransaction tx(c);  // one statement: no BEGIN/COMMIT round trips
    auto r = tx.exec_params(
        "SELECT role FROM gateway.project_members WHERE user_id = $1 AND project_id = $2", user_id,
        project_id);
    if (r.empty()) return std::nullopt;
    return ParseRole(r[0][0].as<std::string>());
  });
}

std::set<int64_t> Store::ProjectsOf(int64_t user_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);  // one statement: no BEGIN/COMMIT round trips
    auto r = tx.exec_params("SELECT project_id FROM gateway.project_members WHERE user_id = $1",
                            user_id);
    std::set<int64_t> out;
    for (const auto& row : r) out.insert(row[0].as<int64_t>());
    return out;
  });
}

void Store::UpsertMember(int64_t project_id, int64_t user_id, Role role) {
  pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO gateway.project_members (project_id, user_id, role) VALUES ($1, "
        "$2, $3) ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
        project_id, user_id, std::string(RoleName(role)));
    tx.commit();
  });
}

bool Store::RemoveMember(int64_t project_id, int64_t user_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r =
        tx.exec_params("DELETE FROM gateway.project_members WHERE project_id = $1 AND user_id = $2",
                       project_id, user_id);
    tx.commit();
    return r.affected_rows() > 0;
  });
}

std::vector<MemberRow> Store::ListMembers(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        "SELECT m.project_id, m.user_id, u.username, m.role, coalesce(o.owner_user_id = "
        "m.user_id, false) FROM gateway.project_members m JOIN gateway.users u ON u.id = "
        "m.user_id LEFT JOIN gateway.project_owners o ON o.project_id = m.project_id WHERE "
        "m.project_id = $1 ORDER BY m.user_id",
        project_id);
    std::vector<MemberRow> out;
    for (const auto& row : r) {
      MemberRow m;
      m.project_id = row[0].as<int64_t>();
      m.user_id = row[1].as<int64_t>();
      m.username = row[2].as<std::string>();
      m.role = ParseRole(row[3].as<std::string>()).value_or(Role::kAnnotator);
      m.owner = row[4].as<bool>();
      out.push_back(std::move(m));
    }
    return out;
  });
}

}  // namespace labelloop::gateway
