// Roles and the authenticated caller. Plain C++.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace labelloop::gateway {

// Lower value = more rights. Numbers match the proto enum labelloop.v1.Role.
enum class Role { kAdmin = 1, kManager = 2, kAnnotator = 3 };

std::string_view RoleName(Role role);  // "admin", "manager", "annotator"
std::optional<Role> ParseRole(std::string_view name);
std::optional<Role> RoleFromInt(int64_t value);
// True when `role` has at least the rights of `required`.
inline bool AtLeast(Role role, Role required) {
  return static_cast<int>(role) <= static_cast<int>(required);
}

// Who is calling, after authentication.
struct Principal {
  int64_t user_id = 0;
  std::string username;
  Role role = Role::kAnnotator;
  int64_t api_key_id = 0;  // non-zero when authenticated by an API key
  // The rate-limit bucket: "user:<id>" or "key:<id>".
  std::string RateKey() const {
    return api_key_id != 0 ? "key:" + std::to_string(api_key_id)
                           : "user:" + std::to_string(user_id);
  }
};

}  // namespace labelloop::gateway
