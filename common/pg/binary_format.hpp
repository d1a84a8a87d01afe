// PostgreSQL's binary formats, without a database so they can be unit-tested: rows for
// COPY ... FROM STDIN (FORMAT binary), and the binary send format of single values (what
// a binary COPY TO or a FETCH with binary results returns). Labeling writes items with
// the encoder, ranking writes and reads score chunks, dl_manager reads export cursors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace labelloop::pg::binary {

inline constexpr uint32_t kTextOid = 25;
inline constexpr uint32_t kFloat4Oid = 700;

// Bytes that are not the value a decoder was asked for.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Encodes rows in the binary COPY format into one growing buffer: the header first, then
// what each call appends, values encoded once with no per-row allocation. The caller
// sends buffer() (and clears it) as it sees fit.
class CopyEncoder {
 public:
  CopyEncoder();
  void BeginTuple(int16_t fields);
  void Null();
  void Text(std::string_view s);  // text, bytea: the raw bytes
  void Jsonb(std::string_view json);
  void Int32(int32_t v);
  void Int64(int64_t v);
  void TimestampMicros(int64_t unix_micros);                 // timestamptz
  void FloatArray(std::span<const float> values);            // real[]
  void TextArray(std::span<const std::string_view> values);  // text[]
  // Marks/undoes the tuple being written (a row found bad midway).
  size_t Mark() const { return buf_.size(); }
  void Truncate(size_t mark) { buf_.resize(mark); }
  std::string& buffer() { return buf_; }
  void AppendTrailer();

 private:
  void Put16(int16_t v);
  void Put32(int32_t v);
  void Put64(int64_t v);
  std::string buf_;
};

// Single values. Every decoder checks the length it is given and throws FormatError on
// bytes that are not the expected type, so a wrong column type fails with a message
// instead of reading past a field.
int64_t Int8(std::string_view field);
int32_t Int4(std::string_view field);
bool Bool(std::string_view field);
float Float4(std::string_view field);
// timestamptz: microseconds since 2000-01-01 00:00:00 UTC; INT64_MAX / INT64_MIN are
// 'infinity' / '-infinity'.
int64_t TimestampMicros(std::string_view field);

// Walks an array value (array_send): header, dimensions, then (length, bytes) per element.
class ArrayReader {
 public:
  explicit ArrayReader(std::string_view field);
  const std::vector<int32_t>& dims() const { return dims_; }
  uint32_t element_oid() const { return element_oid_; }
  // The next element; false for NULL.
  bool Element(std::string_view* value);
  // Throws unless every element was read.
  void CheckEnd() const;

 private:
  int32_t Next32();
  const char* p_;
  const char* end_;
  uint32_t element_oid_ = 0;
  std::vector<int32_t> dims_;
};

// A real[] (one dimension, or empty) into *out (cleared first); NULL elements are NaN.
void Float4Array(std::string_view field, std::vector<float>* out);

}  // namespace labelloop::pg::binary
