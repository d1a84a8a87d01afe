#include "services/gateway/policy.hpp"

#include <gtest/gtest.h>

#include <set>

#include "services/gateway/http_status.hpp"

namespace labelloop::gateway {
namespace {

Principal User(Role role) {
  Principal p;
  p.user_id = 7;
  p.username = "u";
  p.role = role;
  return p;
}

MethodPolicy Policy(Access access) {
  MethodPolicy p;
  p.method = "/labelloop.v1.X/Y";
  p.access = access;
  return p;
}

// Caller kinds: global role + membership in the project of the call.
struct Case {
  const char* name;
  Role role;
  std::optional<Role> membership;
};

const Case kCallers[] = {
    {"admin, not a member", Role::kAdmin, std::nullopt},
    {"manager, manager member", Role::kManager, Role::kManager},
    {"manager, annotator member", Role::kManager, Role::kAnnotator},
    {"manager, other project", Role::kManager, std::nullopt},
    {"annotator, member", Role::kAnnotator, Role::kAnnotator},
    {"annotator, other project", Role::kAnnotator, std::nullopt},
    // A membership above the user's global role never counts above it.
    {"annotator, listed as manager", Role::kAnnotator, Role::kManager},
};

// Expected result per caller (same order as kCallers) for each access level.
struct Row {
  Access access;
  DecisionCode expected[7];
};

constexpr auto A = DecisionCode::kAllow;
constexpr auto D = DecisionCode::kPermissionDenied;
constexpr auto N = DecisionCode::kNotFound;

const Row kMatrix[] = {
    {Access::kAuthenticated, {A, A, A, A, A, A, A}},
    {Access::kCreateProject, {A, A, A, A, D, D, D}},
    {Access::kProjectRead, {A, A, A, N, A, N, A}},
    {Access::kProjectLabel, {A, A, A, N, A, N, A}},
    {Access::kProjectManage, {A, A, D, N, D, N, D}},
    {Access::kAdmin, {A, D, D, D, D, D, D}},
};

TEST(Policy, MatrixOfAccessRoleAndProject) {
  for (const auto& row : kMatrix) {
    for (size_t i = 0; i < std::size(kCallers); ++i) {
      const auto& c = kCallers[i];
      auto caller = User(c.role);
      auto d = Authorize(&caller, Policy(row.access), int64_t{5}, c.membership);
      EXPECT_EQ(d.code, row.expected[i])
          << AccessName(row.access) << " × " << c.name << ": " << d.message;
      if (d.code == DecisionCode::kNotFound) {
        EXPECT_EQ(d.message, "project 5 not found");
      }
    }
  }
}

TEST(Policy, NoCredentialsIsUnauthenticatedEverywhere) {
  for (const auto& row : kMatrix) {
    EXPECT_EQ(Authorize(nullptr, Policy(row.access), int64_t{5}, Role::kManager).code,
              DecisionCode::kUnauthenticated);
  }
}

TEST(Policy, ProjectScopedCallWithoutProjectIsInvalid) {
  auto caller = User(Role::kAdmin);
  auto d = Authorize(&caller, Policy(Access::kProjectRead), std::nullopt, std::nullopt);
  EXPECT_EQ(d.code, DecisionCode::kInvalidArgument);
  EXPECT_NE(d.message.find("project_id"), std::string::npos);
}

TEST(Policy, TableHasNoDuplicatesAndKeepsInternalRpcsOut) {
  std::set<std::string> seen;
  for (const auto& p : PublicMethods()) {
    EXPECT_TRUE(seen.insert(p.method).second) << p.method;
    EXPECT_EQ(p.method.find("/GetInfo"), std::string::npos) << p.method;
    EXPECT_EQ(p.method.find("NextCandidates"), std::string::npos) << p.method;
    EXPECT_FALSE(p.backend.empty()) << p.method;
    const bool scoped = p.access == Access::kProjectRead || p.access == Access::kProjectLabel ||
                        p.access == Access::kProjectManage;
    if (scoped) {
      EXPECT_FALSE(p.project_field.empty() && p.id_field.empty()) << p.method;
    }
  }
}

TEST(Policy, DownloadsAndTrainingNeedManagers) {
  for (const auto& p : PublicMethods()) {
    if (p.method.find("DlManagerService") != std::string::npos ||
        p.method.find("StartTraining") != std::string::npos ||
        p.method.find("Upload") != std::string::npos) {
      EXPECT_EQ(p.access, Access::kProjectManage) << p.method;
    }
  }
}

TEST(HttpStatus, GrpcCodesMapConsistently) {
  EXPECT_EQ(HttpStatusFor(0), 200);
  EXPECT_EQ(HttpStatusFor(3), 400);
  EXPECT_EQ(HttpStatusFor(16), 401);
  EXPECT_EQ(HttpStatusFor(7), 403);
  EXPECT_EQ(HttpStatusFor(5), 404);
  EXPECT_EQ(HttpStatusFor(6), 409);
  EXPECT_EQ(HttpStatusFor(10), 409);
  EXPECT_EQ(HttpStatusFor(9), 412);
  EXPECT_EQ(HttpStatusFor(8), 429);
  EXPECT_EQ(HttpStatusFor(14), 503);
  EXPECT_EQ(HttpStatusFor(4), 504);
  EXPECT_EQ(HttpStatusFor(13), 500);
  EXPECT_EQ(HttpStatusFor(2), 500);
  EXPECT_EQ(ErrorJson(5, "project 3 not found", "abc"),
            R"({"code":"NOT_FOUND","message":"project 3 not found","request_id":"abc"})");
}

}  // namespace
}  // namespace labelloop::gateway
