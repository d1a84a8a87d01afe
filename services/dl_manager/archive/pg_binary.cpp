#include "services/dl_manager/archive/pg_binary.hpp"

#include <charconv>
#include <limits>

#include "common/json/json_text.hpp"
#include "common/pg/binary_format.hpp"

namespace labelloop::dl_manager::pg_binary {
namespace {

void AppendTextElements(std::string* out, pg::binary::ArrayReader& reader, size_t dim) {
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
  pg::binary::ArrayReader reader(field);
  if (reader.dims().empty()) {
    out->append("[]");
  } else {
    AppendTextElements(out, reader, 0);
  }
  reader.CheckEnd();
}

}  // namespace labelloop::dl_manager::pg_binary
