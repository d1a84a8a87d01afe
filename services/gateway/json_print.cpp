#include "services/gateway/json_print.hpp"

#include <google/protobuf/util/json_util.h>

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <type_traits>

#include "common/json/json_text.hpp"

namespace labelloop::gateway {
namespace pb = google::protobuf;
namespace {

using FD = pb::FieldDescriptor;

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

void AppendUInt(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// As protobuf's SimpleDtoa/SimpleFtoa: %g with DBL_DIG (FLT_DIG) digits, or 2 (3) more
// when that does not read back as the same value; NaN and infinities as strings.
template <typename T>
void AppendFloat(std::string* out, T v) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  constexpr bool kFloat = std::is_same_v<T, float>;
  constexpr int kDigits = kFloat ? FLT_DIG : DBL_DIG;
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%.*g", kDigits, static_cast<double>(v));
  const bool exact = kFloat ? std::strtof(buf, nullptr) == static_cast<float>(v)
                            : std::strtod(buf, nullptr) == static_cast<double>(v);
  if (!exact) {
    n = std::snprintf(buf, sizeof buf, "%.*g", kDigits + (kFloat ? 3 : 2), static_cast<double>(v));
  }
  out->append(buf, static_cast<size_t>(n));
}

void AppendBase64(std::string* out, const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->push_back('"');
  size_t i = 0;
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8) | b[i + 2];
    out->push_back(kAlphabet[(n >> 18) & 63]);
    out->push_back(kAlphabet[(n >> 12) & 63]);
    out->push_back(kAlphabet[(n >> 6) & 63]);
    out->push_back(kAlphabet[n & 63]);
  }
  if (i < bytes.size()) {
    uint32_t n = uint32_t{b[i]} << 16;
    if (i + 1 < bytes.size()) n |= uint32_t{b[i + 1]} << 8;
    out->push_back(kAlphabet[(n >> 18) & 63]);
    out->push_back(kAlphabet[(n >> 12) & 63]);
    out->push_back(i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out->push_back('=');
  }
  out->push_back('"');
}

// RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits, as protobuf prints a Timestamp.
bool AppendTimestamp(std::string* out, const pb::Message& m) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  const int64_t seconds = r->GetInt64(m, d->FindFieldByNumber(1));
  const int32_t nanos = r->GetInt32(m, d->FindFieldByNumber(2));
  // protobuf's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
  if (seconds < -62135596800 || seconds > 253402300799 || nanos < 0 || nanos > 999999999) {
    return false;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return false;
  char buf[48];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (n == 0) return false;
  out->push_back('"');
  // strftime's %Y does not pad years below 1000.
  for (size_t pad = std::string_view(buf, n).find('-'); pad < 4; ++pad) out->push_back('0');
  out->append(buf, n);
  if (nanos != 0) {
    char frac[16];
    int digits = 9;
    int value = nanos;
    if (nanos % 1000000 == 0) {
      digits = 3;
      value = nanos / 1000000;
    } else if (nanos % 1000 == 0) {
      digits = 6;
      value = nanos / 1000;
    }
    std::snprintf(frac, sizeof frac, ".%0*d", digits, value);
    out->append(frac);
  }
  out->append("Z\"");
  return true;
}

void AppendMessage(std::string* out, const pb::Message& m);

void AppendScalar(std::string* out, const pb::Message& m, const FD* f, int index) {
  const auto* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT32:
      AppendInt(out, rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FD::CPPTYPE_UINT32:
      AppendUInt(out, rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FD::CPPTYPE_INT64:
      out->push_back('"');
      AppendInt(out, rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      out->push_back('"');
      break;
    case FD::CPPTYPE_UINT64:
      out->push_back('"');
      AppendUInt(out, rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      out->push_back('"');
      break;
    case FD::CPPTYPE_DOUBLE:
      AppendFloat(out, rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      break;
    case FD::CPPTYPE_FLOAT:
      AppendFloat(out, rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
      break;
    case FD::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      break;
    case FD::CPPTYPE_ENUM: {
      const int v = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      const auto* e = f->enum_type()->FindValueByNumber(v);
      if (e != nullptr) {
        json::AppendJsonString(out, e->name());
      } else {
        AppendInt(out, v);
      }
      break;
    }
    case FD::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                 : r->GetStringReference(m, f, &scratch);
      if (f->type() == FD::TYPE_BYTES) {
        AppendBase64(out, s);
      } else {
        json::AppendJsonString(out, s);
      }
      break;
    }
    case FD::CPPTYPE_MESSAGE:
      AppendMessage(out, rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
      break;
  }
}

// A map entry's key as a JSON object key (always a string).
void AppendMapKey(std::string* out, const pb::Message& entry) {
  const auto* f = entry.GetDescriptor()->map_key();
  if (f->cpp_type() == FD::CPPTYPE_STRING) {
    AppendScalar(out, entry, f, -1);
  } else if (f->cpp_type() == FD::CPPTYPE_INT64 || f->cpp_type() == FD::CPPTYPE_UINT64) {
    AppendScalar(out, entry, f, -1);  // already quoted
  } else {
    out->push_back('"');
    AppendScalar(out, entry, f, -1);
    out->push_back('"');
  }
}

void AppendField(std::string* out, const pb::Message& m, const FD* f) {
  const auto* r = m.GetReflection();
  if (f->is_map()) {
    out->push_back('{');
    const int n = r->FieldSize(m, f);
    for (int i = 0; i < n; ++i) {
      if (i > 0) out->push_back(',');
      const auto& entry = r->GetRepeatedMessage(m, f, i);
      AppendMapKey(out, entry);
      out->push_back(':');
      AppendScalar(out, entry, entry.GetDescriptor()->map_value(), -1);
    }
    out->push_back('}');
  } else if (f->is_repeated()) {
    out->push_back('[');
    const int n = r->FieldSize(m, f);
    for (int i = 0; i < n; ++i) {
      if (i > 0) out->push_back(',');
      AppendScalar(out, m, f, i);
    }
    out->push_back(']');
  } else {
    AppendScalar(out, m, f, -1);
  }
}

void AppendMessage(std::string* out, const pb::Message& m) {
  const auto* d = m.GetDescriptor();
  if (d->file()->name().rfind("google/protobuf/", 0) == 0) {
    if (d->full_name() == "google.protobuf.Timestamp" && AppendTimestamp(out, m)) return;
    // Other well-known types (and out-of-range timestamps): protobuf's own printer.
    std::string text;
    pb::util::JsonPrintOptions opts;
    opts.always_print_primitive_fields = true;
    if (pb::util::MessageToJsonString(m, &text, opts).ok()) {
      out->append(text);
    } else {
      out->append("null");
    }
    return;
  }
  const auto* r = m.GetReflection();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    // Fields with presence (messages, oneof members, proto3 `optional`) only when set;
    // the others always, defaults included.
    if (!f->is_repeated() && f->has_presence() && !r->HasField(m, f)) continue;
    if (!first) out->push_back(',');
    first = false;
    json::AppendJsonString(out, f->json_name());
    out->push_back(':');
    AppendField(out, m, f);
  }
  out->push_back('}');
}

}  // namespace

std::string MessageToJson(const pb::Message& message) {
  std::string out;
  out.reserve(256);
  AppendMessage(&out, message);
  return out;
}

}  // namespace labelloop::gateway
