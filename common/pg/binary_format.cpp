#include "common/pg/binary_format.hpp"

#include <bit>
#include <cstring>
#include <limits>

namespace labelloop::pg::binary {
namespace {

constexpr int64_t kPgEpochOffsetMicros = 946684800LL * 1000000;  // 2000-01-01 - 1970-01-01

template <typename T>
T BigEndian(const char* p) {
  uint64_t v = 0;  // compiles to one load and a byte swap
  for (size_t i = 0; i < sizeof(T); ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return static_cast<T>(v);
}

template <typename T>
T Fixed(std::string_view field, const char* type) {
  if (field.size() != sizeof(T)) {
    throw FormatError(std::string("a ") + type + " field has " + std::to_string(field.size()) +
                      " bytes, expected " + std::to_string(sizeof(T)));
  }
  return BigEndian<T>(field.data());
}

}  // namespace

CopyEncoder::CopyEncoder() {
  buf_.reserve(1 << 20);
  static constexpr char kSignature[] = "PGCOPY\n\377\r\n\0";
  buf_.append(kSignature, 11);
  Put32(0);  // flags
  Put32(0);  // header extension length
}

void CopyEncoder::Put16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  const char b[2] = {static_cast<char>(u >> 8), static_cast<char>(u)};
  buf_.append(b, 2);
}

void CopyEncoder::Put32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  const char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16),
                     static_cast<char>(u >> 8), static_cast<char>(u)};
  buf_.append(b, 4);
}

void CopyEncoder::Put64(int64_t v) {
  Put32(static_cast<int32_t>(static_cast<uint64_t>(v) >> 32));
  Put32(static_cast<int32_t>(static_cast<uint64_t>(v) & 0xFFFFFFFFU));
}

void CopyEncoder::BeginTuple(int16_t fields) { Put16(fields); }
void CopyEncoder::Null() { Put32(-1); }

void CopyEncoder::Text(std::string_view s) {
  Put32(static_cast<int32_t>(s.size()));
  buf_.append(s);
}

void CopyEncoder::Jsonb(std::string_view json) {
  Put32(static_cast<int32_t>(json.size() + 1));
  buf_.push_back('\x01');  // jsonb binary format version
  buf_.append(json);
}

void CopyEncoder::Int32(int32_t v) {
  Put32(4);
  Put32(v);
}

void CopyEncoder::Int64(int64_t v) {
  Put32(8);
  Put64(v);
}

void CopyEncoder::TimestampMicros(int64_t unix_micros) {
  Put32(8);
  Put64(unix_micros - kPgEpochOffsetMicros);
}

void CopyEncoder::FloatArray(std::span<const float> values) {
  const size_t n = values.size();
  if (n == 0) {
    Put32(12);
    Put32(0);  // ndim
    Put32(0);  // no nulls
    Put32(static_cast<int32_t>(kFloat4Oid));
    return;
  }
  Put32(static_cast<int32_t>(20 + n * 8));
  Put32(1);  // ndim
  Put32(0);  // no nulls
  Put32(static_cast<int32_t>(kFloat4Oid));
  Put32(static_cast<int32_t>(n));
  Put32(1);  // lower bound
  const size_t at = buf_.size();
  buf_.resize(at + n * 8);
  char* p = buf_.data() + at;
  for (float f : values) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    p[0] = 0;
    p[1] = 0;
    p[2] = 0;
    p[3] = 4;
    p[4] = static_cast<char>(u >> 24);
    p[5] = static_cast<char>(u >> 16);
    p[6] = static_cast<char>(u >> 8);
    p[7] = static_cast<char>(u);
    p += 8;
  }
}

void CopyEncoder::TextArray(std::span<const std::string_view> values) {
  size_t len = values.empty() ? 12 : 20;
  for (auto v : values) len += 4 + v.size();
  Put32(static_cast<int32_t>(len));
  Put32(values.empty() ? 0 : 1);
  Put32(0);
  Put32(static_cast<int32_t>(kTextOid));
  if (values.empty()) return;
  Put32(static_cast<int32_t>(values.size()));
  Put32(1);
  for (auto v : values) Text(v);
}

void CopyEncoder::AppendTrailer() { Put16(-1); }

int64_t Int8(std::string_view field) { return Fixed<int64_t>(field, "int8"); }
int32_t Int4(std::string_view field) { return Fixed<int32_t>(field, "int4"); }
bool Bool(std::string_view field) { return Fixed<uint8_t>(field, "bool") != 0; }
float Float4(std::string_view field) {
  return std::bit_cast<float>(Fixed<uint32_t>(field, "float4"));
}
int64_t TimestampMicros(std::string_view field) { return Fixed<int64_t>(field, "timestamptz"); }

ArrayReader::ArrayReader(std::string_view field) : p_(field.data()), end_(p_ + field.size()) {
  const int32_t ndim = Next32();
  Next32();  // has-nulls flag
  element_oid_ = static_cast<uint32_t>(Next32());
  if (ndim < 0 || ndim > 6)
    throw FormatError("an array has " + std::to_string(ndim) + " dimensions");
  for (int32_t d = 0; d < ndim; ++d) {
    const int32_t n = Next32();
    Next32();  // lower bound
    if (n < 0) throw FormatError("an array dimension has a negative length");
    dims_.push_back(n);
  }
}

bool ArrayReader::Element(std::string_view* value) {
  const int32_t len = Next32();
  if (len < 0) return false;
  if (end_ - p_ < len) throw FormatError("an array element runs past its field");
  *value = std::string_view(p_, static_cast<size_t>(len));
  p_ += len;
  return true;
}

void ArrayReader::CheckEnd() const {
  if (p_ != end_) throw FormatError("an array has bytes after its last element");
}

int32_t ArrayReader::Next32() {
  if (end_ - p_ < 4) throw FormatError("an array field is truncated");
  const int32_t v = BigEndian<int32_t>(p_);
  p_ += 4;
  return v;
}

void Float4Array(std::string_view field, std::vector<float>* out) {
  out->clear();
  ArrayReader reader(field);
  if (reader.dims().size() > 1) {
    throw FormatError("a real[] has " + std::to_string(reader.dims().size()) +
                      " dimensions, expected one");
  }
  const int32_t n = reader.dims().empty() ? 0 : reader.dims()[0];
  // An empty array carries element type 0 or its own; a non-empty one must be real[].
  if (n > 0 && reader.element_oid() != kFloat4Oid) {
    throw FormatError("an array of type oid " + std::to_string(reader.element_oid()) +
                      " is not a real[]");
  }
  out->reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    std::string_view value;
    out->push_back(reader.Element(&value) ? Float4(value)
                                          : std::numeric_limits<float>::quiet_NaN());
  }
  reader.CheckEnd();
}

}  // namespace labelloop::pg::binary
