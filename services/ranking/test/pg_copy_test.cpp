// The binary COPY encoding: what BinaryRowWriter writes, the array decoder reads back.
#include "services/ranking/storage/pg_copy.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

namespace labelloop::ranking::storage {
namespace {

TEST(PgCopy, FloatArrayAndInt64RoundTrip) {
  BinaryRowWriter w;
  const size_t header = w.buffer().size();
  EXPECT_EQ(header, 19u);
  w.BeginRow(2);
  w.Int64(-1234567890123LL);
  const std::vector<float> values = {0.25f, -1.5f, 3e-8f};
  w.FloatArray(values);
  const std::string& b = w.buffer();
  const char* p = b.data() + header + 2;
  uint32_t len;
  std::memcpy(&len, p, 4);
  ASSERT_EQ(ntohl(len), 8u);
  EXPECT_EQ(DecodeInt64({p + 4, 8}), -1234567890123LL);
  p += 12;
  std::memcpy(&len, p, 4);
  Field f{p + 4, static_cast<int32_t>(ntohl(len))};
  std::vector<float> out;
  ASSERT_TRUE(DecodeFloatArray(f, out));
  EXPECT_EQ(out, values);
  EXPECT_EQ(AppendFloatArray(f, out), 3);
  EXPECT_EQ(out.size(), 6u);
}

TEST(PgCopy, MalformedArraysAreRefused) {
  std::vector<float> out;
  EXPECT_FALSE(DecodeFloatArray({nullptr, -1}, out));  // NULL
  const char short_field[4] = {0, 0, 0, 1};
  EXPECT_FALSE(DecodeFloatArray({short_field, 4}, out));
  // An int4[] (oid 23) is not a real[].
  BinaryRowWriter w;
  w.FloatArray(std::vector<float>{1.0f});
  std::string b = w.buffer().substr(19 + 4);
  const uint32_t int4 = htonl(23);
  std::memcpy(b.data() + 8, &int4, 4);
  EXPECT_FALSE(DecodeFloatArray({b.data(), static_cast<int32_t>(b.size())}, out));
}

}  // namespace
}  // namespace labelloop::ranking::storage
