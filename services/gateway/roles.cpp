#include "services/gateway/roles.hpp"

namespace labelloop::gateway {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kManager:
      return "manager";
    case Role::kAnnotator:
      return "annotator";
  }
  return "annotator";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "admin") return Role::kAdmin;
  if (name == "manager") return Role::kManager;
  if (name == "annotator") return Role::kAnnotator;
  return std::nullopt;
}

std::optional<Role> RoleFromInt(int64_t value) {
  if (value >= 1 && value <= 3) return static_cast<Role>(value);
  return std::nullopt;
}

}  // namespace labelloop::gateway
