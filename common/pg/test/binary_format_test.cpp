#include "common/pg/binary_format.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace labelloop::pg::binary {
namespace {

std::string Be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// array_send(): ndim, has-nulls, element oid, (length, lower bound) per dimension, then
// (length or -1, bytes) per element.
std::string Array(uint32_t oid, const std::vector<int>& dims,
                  const std::vector<std::optional<std::string>>& e) {
  std::string s = Be(dims.size(), 4) + Be(0, 4) + Be(oid, 4);
  for (int d : dims) s += Be(static_cast<uint64_t>(d), 4) + Be(1, 4);
  for (const auto& v : e) s += v ? Be(v->size(), 4) + *v : Be(0xffffffffu, 4);
  return s;
}

// Reads the fields of the encoder's tuples back: (length, bytes) each, after the header
// and the field count.
class TupleReader {
 public:
  explicit TupleReader(const std::string& buffer) : b_(buffer) {}
  int16_t FieldCount() { return static_cast<int16_t>(Take(2)); }
  std::optional<std::string_view> Field() {
    const auto len = static_cast<int32_t>(Take(4));
    if (len < 0) return std::nullopt;
    std::string_view v(b_.data() + at_, static_cast<size_t>(len));
    at_ += static_cast<size_t>(len);
    return v;
  }
  size_t at() const { return at_; }

 private:
  uint64_t Take(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(b_[at_++]);
    return v;
  }
  const std::string& b_;
  size_t at_ = 19;  // signature (11), flags (4), header extension length (4)
};

TEST(PgBinaryFormat, DecodesFixedWidthValues) {
  EXPECT_EQ(Int8(Be(0x0102030405060708ULL, 8)), 0x0102030405060708LL);
  EXPECT_EQ(Int8(Be(static_cast<uint64_t>(-2), 8)), -2);
  EXPECT_EQ(Int4(Be(static_cast<uint32_t>(-7), 4)), -7);
  EXPECT_TRUE(Bool(std::string(1, '\1')));
  EXPECT_FALSE(Bool(std::string(1, '\0')));
  EXPECT_EQ(Float4(Be(0x40200000, 4)), 2.5f);  // IEEE 754 2.5
  EXPECT_EQ(TimestampMicros(Be(42, 8)), 42);
  EXPECT_THROW(Int8(Be(1, 4)), FormatError);
  EXPECT_THROW(Bool(""), FormatError);
  try {
    Int4(Be(1, 8));
    FAIL() << "an 8-byte int4 was read";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "a int4 field has 8 bytes, expected 4");
  }
}

TEST(PgBinaryFormat, ReadsRealArraysWithNullsAsNaN) {
  std::vector<float> v{9};
  Float4Array(Array(kFloat4Oid, {3}, {Be(0x3f800000, 4), std::nullopt, Be(0xc0000000, 4)}), &v);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_TRUE(std::isnan(v[1]));
  EXPECT_EQ(v[2], -2.0f);
  Float4Array(Array(0, {}, {}), &v);
  EXPECT_TRUE(v.empty());
}

TEST(PgBinaryFormat, RefusesWhatIsNotARealArray) {
  std::vector<float> v;
  EXPECT_THROW(Float4Array(Array(kFloat4Oid, {1, 1}, {Be(0, 4)}), &v), FormatError);
  EXPECT_THROW(Float4Array(Array(kFloat4Oid, {1}, {std::string("abc")}), &v), FormatError);
  // An int4[] has 4-byte elements too: its type is what tells it apart.
  EXPECT_THROW(Float4Array(Array(23, {1}, {Be(7, 4)}), &v), FormatError);
  std::string truncated = Array(kFloat4Oid, {2}, {Be(0, 4), Be(0, 4)});
  truncated.pop_back();
  EXPECT_THROW(Float4Array(truncated, &v), FormatError);
  EXPECT_THROW(Float4Array(Array(kFloat4Oid, {1}, {Be(0, 4)}) + "z", &v), FormatError);
  EXPECT_THROW(Float4Array("", &v), FormatError);
}

TEST(PgBinaryFormat, ArrayReaderWalksTextArrays) {
  ArrayReader r(Array(kTextOid, {2, 1}, {std::string("x"), std::nullopt}));
  EXPECT_EQ(r.element_oid(), kTextOid);
  EXPECT_EQ(r.dims(), (std::vector<int32_t>{2, 1}));
  std::string_view value;
  ASSERT_TRUE(r.Element(&value));
  EXPECT_EQ(value, "x");
  EXPECT_FALSE(r.Element(&value));
  r.CheckEnd();
  EXPECT_THROW(r.Element(&value), FormatError);
  EXPECT_THROW(ArrayReader(Be(7, 4) + Be(0, 4) + Be(kTextOid, 4)), FormatError);  // 7 dims
}

// What the encoder writes, the decoders read back: the COPY header, each value, the
// trailer.
TEST(PgBinaryFormat, EncodedTuplesDecodeToTheirValues) {
  CopyEncoder enc;
  EXPECT_EQ(enc.buffer(), std::string("PGCOPY\n\377\r\n\0", 11) + std::string(8, '\0'));
  const std::vector<float> floats = {0.25f, -1.5f, 3e-8f};
  const std::vector<std::string_view> texts = {"a", "", "ünï"};
  enc.BeginTuple(9);
  enc.Int64(-1234567890123LL);
  enc.Int32(-42);
  enc.Text("hello");
  enc.Null();
  enc.Jsonb(R"({"g":1})");
  enc.TimestampMicros(946684800LL * 1000000 + 5);  // 2000-01-01 00:00:00.000005 UTC
  enc.FloatArray(floats);
  enc.FloatArray({});
  enc.TextArray(texts);
  const size_t mark = enc.Mark();
  enc.BeginTuple(1);
  enc.Int64(1);
  enc.Truncate(mark);  // a row found bad midway leaves nothing behind
  enc.AppendTrailer();

  TupleReader t(enc.buffer());
  ASSERT_EQ(t.FieldCount(), 9);
  EXPECT_EQ(Int8(*t.Field()), -1234567890123LL);
  EXPECT_EQ(Int4(*t.Field()), -42);
  EXPECT_EQ(*t.Field(), "hello");
  EXPECT_FALSE(t.Field().has_value());
  EXPECT_EQ(*t.Field(), std::string("\x01") + R"({"g":1})");
  EXPECT_EQ(TimestampMicros(*t.Field()), 5);
  std::vector<float> decoded;
  Float4Array(*t.Field(), &decoded);
  EXPECT_EQ(decoded, floats);
  Float4Array(*t.Field(), &decoded);
  EXPECT_TRUE(decoded.empty());
  ArrayReader r(*t.Field());
  ASSERT_EQ(r.dims(), (std::vector<int32_t>{3}));
  for (auto want : texts) {
    std::string_view got;
    ASSERT_TRUE(r.Element(&got));
    EXPECT_EQ(got, want);
  }
  r.CheckEnd();
  EXPECT_EQ(t.FieldCount(), -1);  // the trailer
  EXPECT_EQ(t.at(), enc.buffer().size());
}

}  // namespace
}  // namespace labelloop::pg::binary
