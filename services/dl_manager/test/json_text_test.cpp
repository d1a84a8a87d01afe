#include "services/dl_manager/archive/json_text.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace labelloop::dl_manager {
namespace {

TEST(JsonText, FloatsAreShortestAndNonFiniteIsNull) {
  std::string s;
  AppendFloat(&s, 0.1f);
  s += ' ';
  AppendFloat(&s, 1.0f);
  s += ' ';
  AppendFloat(&s, std::numeric_limits<float>::quiet_NaN());
  s += ' ';
  AppendFloat(&s, -std::numeric_limits<float>::infinity());
  EXPECT_EQ(s, "0.1 1 null null");
}

TEST(JsonText, StringsAreEscaped) {
  std::string s;
  AppendJsonString(&s, "a\"b\\c\nd\x01 é");
  EXPECT_EQ(s, "\"a\\\"b\\\\c\\nd\\u0001 é\"");
}

TEST(JsonText, ParsesPostgresRealArrays) {
  std::vector<float> v;
  ASSERT_TRUE(ParseFloatArray("{1.5,-2,3e-05,NaN,NULL,Infinity}", &v));
  ASSERT_EQ(v.size(), 6u);
  EXPECT_FLOAT_EQ(v[0], 1.5f);
  EXPECT_FLOAT_EQ(v[1], -2.0f);
  EXPECT_FLOAT_EQ(v[2], 3e-05f);
  EXPECT_TRUE(std::isnan(v[3]));
  EXPECT_TRUE(std::isnan(v[4]));
  EXPECT_TRUE(std::isinf(v[5]));
  ASSERT_TRUE(ParseFloatArray("{}", &v));
  EXPECT_TRUE(v.empty());
  EXPECT_FALSE(ParseFloatArray("{1,abc}", &v));
  EXPECT_FALSE(ParseFloatArray("1,2", &v));
  EXPECT_FALSE(ParseFloatArray("{{1,2},{3,4}}", &v));
}

}  // namespace
}  // namespace labelloop::dl_manager
