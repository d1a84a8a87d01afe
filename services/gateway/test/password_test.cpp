#include "services/gateway/password.hpp"

#include <gtest/gtest.h>

namespace labelloop::gateway {
namespace {

TEST(Password, HashIsArgon2idAndVerifies) {
  const auto hash = HashPassword("correct horse");
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_TRUE(VerifyPassword(hash, "correct horse"));
  EXPECT_FALSE(VerifyPassword(hash, "correct horse "));
  EXPECT_FALSE(VerifyPassword(hash, ""));
}

TEST(Password, SamePasswordHashesDifferently) {
  EXPECT_NE(HashPassword("same password"), HashPassword("same password"));
}

TEST(Password, MalformedHashNeverVerifies) {
  EXPECT_FALSE(VerifyPassword("", "x"));
  EXPECT_FALSE(VerifyPassword("not a hash", "not a hash"));
}

TEST(Password, RulesNameTheField) {
  EXPECT_NE(CheckNewPassword("short").find("password"), std::string::npos);
  EXPECT_EQ(CheckNewPassword("long enough"), "");
  EXPECT_NE(CheckUsername("ab").find("username"), std::string::npos);
  EXPECT_NE(CheckUsername("bad name").find("username"), std::string::npos);
  EXPECT_EQ(CheckUsername("ann.smith-2_x"), "");
}

}  // namespace
}  // namespace labelloop::gateway
