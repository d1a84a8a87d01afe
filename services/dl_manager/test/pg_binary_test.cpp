#include "services/dl_manager/archive/pg_binary.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>

#include "common/pg/binary_format.hpp"

namespace labelloop::dl_manager::pg_binary {
namespace {

std::string Be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// array_send(): ndim, has-nulls, element oid, (length, lower bound) per dimension, then
// (length or -1, bytes) per element.
std::string Array(const std::vector<int>& dims, const std::vector<std::optional<std::string>>& e) {
  std::string s = Be(dims.size(), 4) + Be(0, 4) + Be(25, 4);
  for (int d : dims) s += Be(static_cast<uint64_t>(d), 4) + Be(1, 4);
  for (const auto& v : e) s += v ? Be(v->size(), 4) + *v : Be(0xffffffffu, 4);
  return s;
}

std::string Json(int64_t micros) {
  std::string s;
  AppendJsonTimestamp(&s, micros);
  return s;
}

TEST(PgBinary, FormatsTimestampsLikeToJsonInUtc) {
  EXPECT_EQ(Json(0), "\"2000-01-01T00:00:00+00:00\"");
  // 2024-03-01 00:01:00 UTC = 8826 days + 60 s after 2000-01-01.
  EXPECT_EQ(Json((8826LL * 86400 + 60) * 1000000), "\"2024-03-01T00:01:00+00:00\"");
  EXPECT_EQ(Json(500000), "\"2000-01-01T00:00:00.5+00:00\"");
  EXPECT_EQ(Json(123), "\"2000-01-01T00:00:00.000123+00:00\"");
  EXPECT_EQ(Json(-1), "\"1999-12-31T23:59:59.999999+00:00\"");
  // 1970-01-01 is 10957 days before 2000-01-01; 2000-02-29 exists (leap year).
  EXPECT_EQ(Json(-10957LL * 86400 * 1000000), "\"1970-01-01T00:00:00+00:00\"");
  EXPECT_EQ(Json(59LL * 86400 * 1000000 + 3723000000LL), "\"2000-02-29T01:02:03+00:00\"");
  EXPECT_EQ(Json(std::numeric_limits<int64_t>::max()), "\"infinity\"");
  EXPECT_EQ(Json(std::numeric_limits<int64_t>::min()), "\"-infinity\"");
}

TEST(PgBinary, WritesTextArraysAsJson) {
  std::string out;
  AppendJsonTextArray(&out, Array({2}, {std::string("a\"b"), std::nullopt}));
  EXPECT_EQ(out, R"(["a\"b",null])");
  out.clear();
  AppendJsonTextArray(&out, Array({}, {}));
  EXPECT_EQ(out, "[]");
  out.clear();
  AppendJsonTextArray(&out, Array({2, 1}, {std::string("x"), std::string("y")}));
  EXPECT_EQ(out, R"([["x"],["y"]])");
  std::string truncated = Array({2}, {std::string("abc"), std::string("d")});
  truncated.pop_back();
  EXPECT_THROW(AppendJsonTextArray(&out, truncated), pg::binary::FormatError);
  EXPECT_THROW(AppendJsonTextArray(&out, Array({1}, {std::string("a")}) + "z"),
               pg::binary::FormatError);
}

}  // namespace
}  // namespace labelloop::dl_manager::pg_binary
