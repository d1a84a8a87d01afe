#include "services/labeling/domain/cursor.hpp"

#include <gtest/gtest.h>

namespace labelloop::labeling {
namespace {

TEST(Cursor, RoundTrips) {
  const auto fp = FilterFingerprint("items|p=1");
  for (int64_t id : {int64_t{1}, int64_t{999999}, int64_t{9007199254740993}}) {
    auto token = EncodeCursor(id, fp);
    EXPECT_EQ(
        token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos);
    auto d = DecodeCursor(token, fp);
    ASSERT_TRUE(d.ok()) << d.error;
    EXPECT_EQ(d.last_id, id);
  }
  EXPECT_EQ(DecodeCursor("", fp).last_id, 0);
}

TEST(Cursor, RefusesGarbageAndOtherFilters) {
  const auto fp = FilterFingerprint("items|p=1");
  EXPECT_EQ(DecodeCursor("not a cursor!", fp).error,
            "page_token: not a token returned by this call");
  EXPECT_EQ(DecodeCursor("YWJj", fp).error, "page_token: not a token returned by this call");
  auto token = EncodeCursor(5, fp);
  EXPECT_EQ(DecodeCursor(token, FilterFingerprint("items|p=2")).error,
            "page_token: was made for other filters; start again without it");
  EXPECT_NE(FilterFingerprint("a"), FilterFingerprint("b"));
}

}  // namespace
}  // namespace labelloop::labeling
