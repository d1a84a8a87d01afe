#include "services/labeling/ingest/values.hpp"

#include <gtest/gtest.h>

#include "services/labeling/ingest/base64.hpp"

namespace labelloop::labeling::ingest {
namespace {

int64_t Ts(const std::string& s) {
  int64_t micros = 0;
  std::string err;
  EXPECT_TRUE(ParseTimestamp(s, &micros, &err)) << s << ": " << err;
  return micros;
}

std::string TsError(const std::string& s) {
  int64_t micros = 0;
  std::string err;
  EXPECT_FALSE(ParseTimestamp(s, &micros, &err)) << s;
  return err;
}

TEST(ParseTimestamp, IsoFormsAndUnixSeconds) {
  EXPECT_EQ(Ts("1970-01-01"), 0);
  EXPECT_EQ(Ts("2024-05-01T12:30:00Z"), 1714566600LL * 1000000);
  EXPECT_EQ(Ts("2024-05-01 12:30:00"), 1714566600LL * 1000000);
  EXPECT_EQ(Ts("2024-05-01T14:30:00+02:00"), 1714566600LL * 1000000);
  EXPECT_EQ(Ts("2024-05-01T07:30:00-0500"), 1714566600LL * 1000000);
  EXPECT_EQ(Ts("2024-05-01T12:30:00.25Z"), 1714566600LL * 1000000 + 250000);
  EXPECT_EQ(Ts("2024-05-01T12:30Z"), 1714566600LL * 1000000);
  EXPECT_EQ(Ts("1714566600"), 1714566600LL * 1000000);
  EXPECT_EQ(Ts("1714566600.5"), 1714566600LL * 1000000 + 500000);
  EXPECT_EQ(Ts("2000-02-29T00:00:00Z"), 951782400LL * 1000000);
}

TEST(ParseTimestamp, ErrorsSayWhatIsWrong) {
  EXPECT_NE(TsError("yesterday").find("not an ISO-8601 time"), std::string::npos);
  EXPECT_NE(TsError("2023-02-29").find("not a calendar date"), std::string::npos);
  EXPECT_NE(TsError("2024-05-01T25:00:00").find("out of range"), std::string::npos);
  EXPECT_NE(TsError("2024-05-01T12:30:00 junk").find("not an ISO-8601"), std::string::npos);
  EXPECT_NE(TsError("").find("empty"), std::string::npos);
}

TEST(ParseFloat, FiniteNumbersOnly) {
  float f = 0;
  EXPECT_TRUE(ParseFloat("1.5", &f));
  EXPECT_FLOAT_EQ(f, 1.5f);
  EXPECT_TRUE(ParseFloat(" -2e3 ", &f));
  EXPECT_FLOAT_EQ(f, -2000.0f);
  EXPECT_TRUE(ParseFloat("+3", &f));
  EXPECT_FALSE(ParseFloat("", &f));
  EXPECT_FALSE(ParseFloat("abc", &f));
  EXPECT_FALSE(ParseFloat("1.5x", &f));
  EXPECT_FALSE(ParseFloat("nan", &f));
  EXPECT_FALSE(ParseFloat("inf", &f));
  EXPECT_FALSE(ParseFloat("1e999", &f));
}

TEST(IsValidUtf8, AcceptsUtf8RefusesBrokenSequencesAndNul) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("héllo ✓ 😀"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

TEST(AppendJsonString, EscapesControlCharacters) {
  std::string out;
  AppendJsonString(&out, "a\"b\\c\nd\x01");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST(Base64, DecodesAndRefusesGarbage) {
  std::string out;
  EXPECT_TRUE(DecodeBase64("aGVsbG8=", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(DecodeBase64("aGVsbG8", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_FALSE(DecodeBase64("a$b=", &out));
  EXPECT_FALSE(DecodeBase64("a", &out));
}

}  // namespace
}  // namespace labelloop::labeling::ingest
