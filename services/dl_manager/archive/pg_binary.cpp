#include "services/dl_manager/archive/pg_binary.hpp"

#include <bit>
#include <charconv>
#include <limits>

#include "common/json/json_text.hpp"

namespace labelloop::dl_manager::pg_binary {
namespace {

template <typename T>
T BigEndian(const char* p) {
  uint64_t v = 0;  // compiles to one load and a byte swap
  for (size_t i = 0; i < sizeof(T); ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return static_cast<T>(v);
}

template <typename T>
T Fixed(std::string_view field, const char* type) {
  if (field.size() != sizeof(T)) {
    throw BinaryFormatError(std::string("a ") + type + " field has " +
                            std::to_string(field.size()) + " bytes, expected " +
                            std::to_string(sizeof(T)));
  }
  return BigEndian<T>(field.data());
}

// Walks an array_send() value: header, dimensions, then (length, bytes) per element.
class ArrayReader {
 public:
  explicit ArrayReader(std::string_view field) : p_(field.data()), end_(p_ + field.size()) {
    const int32_t ndim = Int32();
    Int32();  // has-nulls flag
    Int32();  // element type oid
    if (ndim < 0 || ndim > 6)
      throw BinaryFormatError("an array has " + std::to_string(ndim) + " dimensions");
    for (int32_t d = 0; d < ndim; ++d) {
      const int32_t n = Int32();
      Int32();  // lower bound
      if (n < 0) throw BinaryFormatError("an array dimension has a negative length");
      dims_.push_back(n);
    }
  }
  const std::vector<int32_t>& dims() const { return dims_; }
  // The next element; false for NULL.
  bool Element(std::string_view* value) {
    const int32_t len = Int32();
    if (len < 0) return false;
    if (end_ - p_ < len) throw BinaryFormatError("an array element runs past its field");
    *value = std::string_view(p_, static_cast<size_t>(len));
    p_ += len;
    return true;
  }
  void CheckEnd() const {
    if (p_ != end_) throw BinaryFormatError("an array has bytes after its last element");
  }

 private:
  int32_t Int32() {
    if (end_ - p_ < 4) throw BinaryFormatError("an array field is truncated");
    const int32_t v = BigEndian<int32_t>(p_);
    p_ += 4;
    return v;
  }
  const char* p_;
  const char* end_;
  std::vector<int32_t> dims_;
};

void AppendTextElements(std::string* out, ArrayReader& reader, size_t dim) {
  out->push_back('[');
  const int32_t n = reader.dims()[dim];
  for (int32_t i = 0; i < n; ++i) {
    if (i > 0) out->push_back(',');
    if (dim + 1 < reader.dims().size()) {
      AppendTextElements(out, reader, dim + 1);
      continue;
    }
    std::string_view value;
    if (reader.Element(&value)) {
      json::AppendJsonString(out, value);
    } else {
      out->append("null");
    }
  }
  out->push_back(']');
}

void AppendDigits(std::string* out, int64_t v, int width) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  for (int pad = width - static_cast<int>(end - buf); pad > 0; --pad) out->push_back('0');
  out->append(buf, end);
}

// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

}  // namespace

int64_t Int8(std::string_view field) { return Fixed<int64_t>(field, "int8"); }
int32_t Int4(std::string_view field) { return Fixed<int32_t>(field, "int4"); }
bool Bool(std::string_view field) { return Fixed<uint8_t>(field, "bool") != 0; }
float Float4(std::string_view field) {
  return std::bit_cast<float>(Fixed<uint32_t>(field, "float4"));
}
int64_t TimestampMicros(std::string_view field) { return Fixed<int64_t>(field, "timestamptz"); }

void AppendJsonTimestamp(std::string* out, int64_t micros) {
  if (micros == std::numeric_limits<int64_t>::max()) {
    out->append("\"infinity\"");
    return;
  }
  if (micros == std::numeric_limits<int64_t>::min()) {
    out->append("\"-infinity\"");
    return;
  }
  constexpr int64_t kDay = 86400LL * 1000000;
  constexpr int64_t kDays1970To2000 = 10957;
  int64_t days = micros / kDay;
  int64_t rest = micros % kDay;
  if (rest < 0) {
    rest += kDay;
    --days;
  }
  int64_t year;
  int month, day;
  CivilFromDays(days + kDays1970To2000, &year, &month, &day);
  const int64_t seconds = rest / 1000000;
  int64_t fraction = rest % 1000000;
  out->push_back('"');
  if (year < 0) {
    out->push_back('-');
    year = -year;
  }
  AppendDigits(out, year, 4);
  out->push_back('-');
  AppendDigits(out, month, 2);
  out->push_back('-');
  AppendDigits(out, day, 2);
  out->push_back('T');
  AppendDigits(out, seconds / 3600, 2);
  out->push_back(':');
  AppendDigits(out, seconds / 60 % 60, 2);
  out->push_back(':');
  AppendDigits(out, seconds % 60, 2);
  if (fraction != 0) {
    int width = 6;
    while (fraction % 10 == 0) {
      fraction /= 10;
      --width;
    }
    out->push_back('.');
    AppendDigits(out, fraction, width);
  }
  out->append("+00:00\"");
}

void AppendJsonTextArray(std::string* out, std::string_view field) {
  ArrayReader reader(field);
  if (reader.dims().empty()) {
    out->append("[]");
  } else {
    AppendTextElements(out, reader, 0);
  }
  reader.CheckEnd();
}

void Float4Array(std::string_view field, std::vector<float>* out) {
  out->clear();
  ArrayReader reader(field);
  if (reader.dims().size() > 1) {
    throw BinaryFormatError("a real[] has " + std::to_string(reader.dims().size()) +
                            " dimensions, expected one");
  }
  const int32_t n = reader.dims().empty() ? 0 : reader.dims()[0];
  out->reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    std::string_view value;
    out->push_back(reader.Element(&value) ? Float4(value)
                                          : std::numeric_limits<float>::quiet_NaN());
  }
  reader.CheckEnd();
}

}  // namespace labelloop::dl_manager::pg_binary
