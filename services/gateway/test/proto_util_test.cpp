#include "services/gateway/proto_util.hpp"

#include <gtest/gtest.h>

#include "labelloop/v1/gateway.pb.h"

namespace labelloop::gateway {
namespace {

TEST(ProtoUtil, ReadsAndWritesIntegersByName) {
  v1::AddMemberRequest m;
  m.set_project_id(12);
  EXPECT_EQ(GetInt(m, "project_id"), 12);
  EXPECT_EQ(GetInt(m, "missing"), std::nullopt);
  EXPECT_EQ(GetInt(m, "username"), std::nullopt);
  EXPECT_TRUE(SetInt(&m, "user_id", 9));
  EXPECT_EQ(m.user_id(), 9);
  EXPECT_TRUE(HasPath(v1::AddMemberRequest::descriptor(), "project_id"));
  EXPECT_FALSE(HasPath(v1::AddMemberRequest::descriptor(), "username"));
}

TEST(ProtoUtil, DottedPathsGoIntoSubMessages) {
  v1::CreateApiKeyResponse r;
  r.mutable_api_key()->set_user_id(4);
  EXPECT_EQ(GetInt(r, "api_key.user_id"), 4);
  EXPECT_TRUE(HasPath(v1::CreateApiKeyResponse::descriptor(), "api_key.user_id"));
  v1::CreateApiKeyResponse empty;
  EXPECT_EQ(GetInt(empty, "api_key.user_id"), std::nullopt);
}

TEST(ProtoUtil, OverwritesIdentityFields) {
  v1::AddMemberRequest m;
  m.set_username("mallory");
  EXPECT_TRUE(OverwriteStrings(&m, {"username", "annotator"}, "alice"));
  EXPECT_EQ(m.username(), "alice");
  EXPECT_FALSE(OverwriteStrings(&m, {"username"}, "alice"));
}

TEST(ProtoUtil, FiltersRepeatedMessagesByProject) {
  v1::ListMembersResponse r;
  for (int64_t p : {1, 2, 3, 2, 4}) r.add_members()->set_project_id(p);
  FilterByProject(&r, {2, 4});
  ASSERT_EQ(r.members_size(), 3);
  EXPECT_EQ(r.members(0).project_id(), 2);
  EXPECT_EQ(r.members(1).project_id(), 2);
  EXPECT_EQ(r.members(2).project_id(), 4);
  FilterByProject(&r, {});
  EXPECT_EQ(r.members_size(), 0);
}

TEST(ProtoUtil, ByteBufferRoundTrip) {
  std::string bytes("\0\1\2abc", 6);
  EXPECT_EQ(ToString(ToBuffer(bytes)), bytes);
}

}  // namespace
}  // namespace labelloop::gateway
