#include "services/gateway/json_parse.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <cfloat>
#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

namespace labelloop::gateway {
namespace pb = google::protobuf;
namespace {

using FD = pb::FieldDescriptor;

constexpr int kMaxDepth = 32;

// A strict JSON reader that writes into a message through reflection. Every Parse* returns
// false both on invalid JSON and on anything left to protobuf's parser.
class Parser {
 public:
  explicit Parser(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool Top(pb::Message* m) {
    SkipWs();
    if (!Object(m, 0)) return false;
    SkipWs();
    return p_ == end_;
  }

 private:
  void SkipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool Eat(char c) {
    SkipWs();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  bool Peek(char c) {
    SkipWs();
    return p_ < end_ && *p_ == c;
  }

  static bool Hex4(const char* s, uint32_t* out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s[i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    *out = v;
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // Length of the well-formed UTF-8 sequence at s (0 when it is not one).
  static size_t Utf8Length(const unsigned char* s, const unsigned char* end) {
    const unsigned char c = s[0];
    size_t n = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (end - s < static_cast<ptrdiff_t>(n)) return 0;
    for (size_t i = 1; i < n; ++i) {
      if ((s[i] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i] & 0x3F);
    }
    const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
  }

  // A JSON string (strict: no control characters, valid UTF-8, paired surrogates).
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    out->clear();
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (end_ - p_ < 2) return false;
        const char e = p_[1];
        p_ += 2;
        switch (e) {
          case '"':
            out->push_back('"');
            break;
          case '\\':
            out->push_back('\\');
            break;
          case '/':
            out->push_back('/');
            break;
          case 'b':
            out->push_back('\b');
            break;
          case 'f':
            out->push_back('\f');
            break;
          case 'n':
            out->push_back('\n');
            break;
          case 'r':
            out->push_back('\r');
            break;
          case 't':
            out->push_back('\t');
            break;
          case 'u': {
            uint32_t cp = 0;
            if (end_ - p_ < 4 || !Hex4(p_, &cp)) return false;
            p_ += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              uint32_t lo = 0;
              if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u' || !Hex4(p_ + 2, &lo) ||
                  lo < 0xDC00 || lo > 0xDFFF) {
                return false;
              }
              p_ += 6;
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            AppendUtf8(cp, out);
            break;
          }
          default:
            return false;
        }
        continue;
      }
      if (c < 0x80) {
        out->push_back(static_cast<char>(c));
        ++p_;
        continue;
      }
      const size_t n = Utf8Length(reinterpret_cast<const unsigned char*>(p_),
                                  reinterpret_cast<const unsigned char*>(end_));
      if (n == 0) return false;
      out->append(p_, n);
      p_ += n;
    }
    return false;
  }

  // A JSON number token as text; *integral when it has no fraction or exponent.
  bool NumberToken(std::string_view* token, bool* integral) {
    SkipWs();
    const char* start = p_;
    const char* q = p_;
    if (q < end_ && *q == '-') ++q;
    if (q >= end_ || *q < '0' || *q > '9') return false;
    if (*q == '0') {
      ++q;
      if (q < end_ && *q >= '0' && *q <= '9') return false;  // leading zero
    } else {
      while (q < end_ && *q >= '0' && *q <= '9') ++q;
    }
    *integral = true;
    if (q < end_ && *q == '.') {
      *integral = false;
      ++q;
      if (q >= end_ || *q < '0' || *q > '9') return false;
      while (q < end_ && *q >= '0' && *q <= '9') ++q;
    }
    if (q < end_ && (*q == 'e' || *q == 'E')) {
      *integral = false;
      ++q;
      if (q < end_ && (*q == '+' || *q == '-')) ++q;
      if (q >= end_ || *q < '0' || *q > '9') return false;
      while (q < end_ && *q >= '0' && *q <= '9') ++q;
    }
    *token = std::string_view(start, static_cast<size_t>(q - start));
    p_ = q;
    return true;
  }

  // -?(0|[1-9][0-9]*) in the range of T.
  template <typename T>
  static bool ParseInt(std::string_view s, T* out) {
    if (s.empty()) return false;
    const bool neg = s[0] == '-';
    const std::string_view digits = neg ? s.substr(1) : s;
    if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return false;
    if (neg && digits == "0") return false;  // -0: protobuf's parser
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
    }
    if (neg && std::is_unsigned_v<T>) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
  }

  // An integer field's value: a number without fraction or exponent, or such a string.
  template <typename T>
  bool Integer(T* out) {
    if (Peek('"')) {
      std::string s;
      return String(&s) && ParseInt(s, out);
    }
    std::string_view token;
    bool integral = false;
    return NumberToken(&token, &integral) && integral && ParseInt(token, out);
  }

  // A double or float field's value from a JSON number (strings such as "NaN" go to
  // protobuf). Values protobuf refuses as inexact or out of range go to protobuf too.
  bool Real(double* out, bool is_float) {
    std::string_view token;
    bool integral = false;
    if (!NumberToken(&token, &integral)) return false;
    auto r = std::from_chars(token.data(), token.data() + token.size(), *out);
    if (r.ec != std::errc() || r.ptr != token.data() + token.size() || !std::isfinite(*out)) {
      return false;
    }
    if (integral) {
      // protobuf reads these as integers and refuses a conversion that loses precision.
      const double limit = is_float ? 16777216.0 : 9007199254740992.0;
      if (std::fabs(*out) > limit) return false;
    }
    return !is_float || std::fabs(*out) <= FLT_MAX;
  }

  static bool Base64(std::string_view s, std::string* out) {
    // Standard alphabet, padded, canonical (unused bits zero); others go to protobuf.
    if (s.size() % 4 != 0) return false;
    auto value = [](char c) -> int {
      if (c >= 'A' && c <= 'Z') return c - 'A';
      if (c >= 'a' && c <= 'z') return c - 'a' + 26;
      if (c >= '0' && c <= '9') return c - '0' + 52;
      if (c == '+') return 62;
      if (c == '/') return 63;
      return -1;
    };
    out->clear();
    out->reserve(s.size() / 4 * 3);
    for (size_t i = 0; i < s.size(); i += 4) {
      const bool last = i + 4 == s.size();
      const int pad = last ? (s[i + 3] == '=' ? (s[i + 2] == '=' ? 2 : 1) : 0) : 0;
      int v[4] = {0, 0, 0, 0};
      for (int k = 0; k < 4 - pad; ++k) {
        v[k] = value(s[i + static_cast<size_t>(k)]);
        if (v[k] < 0) return false;
      }
      const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                         (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
      out->push_back(static_cast<char>((n >> 16) & 0xFF));
      if (pad == 2 && (n & 0xFFFF) != 0) return false;
      if (pad < 2) out->push_back(static_cast<char>((n >> 8) & 0xFF));
      if (pad == 1 && (n & 0xFF) != 0) return false;
      if (pad == 0) out->push_back(static_cast<char>(n & 0xFF));
    }
    return true;
  }

  // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
  static int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2 ? 1 : 0;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
  }

  // "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" (years 0001-9999); other forms go to protobuf.
  static bool Timestamp(std::string_view s, int64_t* seconds, int32_t* nanos) {
    auto digits = [&](size_t pos, size_t n, int64_t* v) {
      if (pos + n > s.size()) return false;
      *v = 0;
      for (size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        *v = *v * 10 + (s[i] - '0');
      }
      return true;
    };
    int64_t y, mo, d, h, mi, sec;
    if (s.size() < 20 || !digits(0, 4, &y) || s[4] != '-' || !digits(5, 2, &mo) || s[7] != '-' ||
        !digits(8, 2, &d) || s[10] != 'T' || !digits(11, 2, &h) || s[13] != ':' ||
        !digits(14, 2, &mi) || s[16] != ':' || !digits(17, 2, &sec)) {
      return false;
    }
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && leap ? 1 : 0) ||
        h > 23 || mi > 59 || sec > 59) {
      return false;
    }
    size_t pos = 19;
    int64_t frac = 0;
    if (s[pos] == '.') {
      ++pos;
      size_t n = 0;
      while (pos + n < s.size() && s[pos + n] >= '0' && s[pos + n] <= '9') ++n;
      if (n == 0 || n > 9 || !digits(pos, n, &frac)) return false;
      for (size_t i = n; i < 9; ++i) frac *= 10;
      pos += n;
    }
    if (pos + 1 != s.size() || s[pos] != 'Z') return false;
    *seconds = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    *nanos = static_cast<int32_t>(frac);
    return true;
  }

  // One value of field f: set on m, or added when f is repeated.
  bool Value(pb::Message* m, const FD* f, int depth) {
    const auto* r = m->GetReflection();
    const bool add = f->is_repeated();
    switch (f->cpp_type()) {
      case FD::CPPTYPE_INT32: {
        int32_t v;
        if (!Integer(&v)) return false;
        add ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
        return true;
      }
      case FD::CPPTYPE_INT64: {
        int64_t v;
        if (!Integer(&v)) return false;
        add ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
        return true;
      }
      case FD::CPPTYPE_UINT32: {
        uint32_t v;
        if (!Integer(&v)) return false;
        add ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
        return true;
      }
      case FD::CPPTYPE_UINT64: {
        uint64_t v;
        if (!Integer(&v)) return false;
        add ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
        return true;
      }
      case FD::CPPTYPE_DOUBLE: {
        double v;
        if (!Real(&v, false)) return false;
        add ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
        return true;
      }
      case FD::CPPTYPE_FLOAT: {
        double v;
        if (!Real(&v, true)) return false;
        add ? r->AddFloat(m, f, static_cast<float>(v)) : r->SetFloat(m, f, static_cast<float>(v));
        return true;
      }
      case FD::CPPTYPE_BOOL: {
        SkipWs();
        bool v;
        if (end_ - p_ >= 4 && std::string_view(p_, 4) == "true") {
          v = true;
          p_ += 4;
        } else if (end_ - p_ >= 5 && std::string_view(p_, 5) == "false") {
          v = false;
          p_ += 5;
        } else {
          return false;
        }
        add ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
        return true;
      }
      case FD::CPPTYPE_ENUM: {
        const pb::EnumValueDescriptor* e = nullptr;
        if (Peek('"')) {
          std::string name;
          if (!String(&name)) return false;
          e = f->enum_type()->FindValueByName(name);
        } else {
          std::string_view token;
          bool integral = false;
          int32_t n = 0;
          if (!NumberToken(&token, &integral) || !integral || !ParseInt(token, &n)) return false;
          e = f->enum_type()->FindValueByNumber(n);
        }
        if (e == nullptr) return false;
        add ? r->AddEnumValue(m, f, e->number()) : r->SetEnumValue(m, f, e->number());
        return true;
      }
      case FD::CPPTYPE_STRING: {
        std::string s;
        if (!String(&s)) return false;
        if (f->type() == FD::TYPE_BYTES) {
          std::string bytes;
          if (!Base64(s, &bytes)) return false;
          s = std::move(bytes);
        }
        add ? r->AddString(m, f, std::move(s)) : r->SetString(m, f, std::move(s));
        return true;
      }
      case FD::CPPTYPE_MESSAGE: {
        const auto* type = f->message_type();
        if (type->file()->name().rfind("google/protobuf/", 0) == 0) {
          if (type->full_name() != "google.protobuf.Timestamp") return false;
          std::string s;
          int64_t seconds = 0;
          int32_t nanos = 0;
          if (!String(&s) || !Timestamp(s, &seconds, &nanos)) return false;
          auto* t = add ? r->AddMessage(m, f) : r->MutableMessage(m, f);
          t->GetReflection()->SetInt64(t, type->FindFieldByNumber(1), seconds);
          t->GetReflection()->SetInt32(t, type->FindFieldByNumber(2), nanos);
          return true;
        }
        return Object(add ? r->AddMessage(m, f) : r->MutableMessage(m, f), depth + 1);
      }
    }
    return false;
  }

  // A map field's object: keys as the key type's JSON form, no key twice.
  bool Map(pb::Message* m, const FD* f, int depth) {
    if (!Eat('{')) return false;
    const auto* r = m->GetReflection();
    const auto* key_field = f->message_type()->map_key();
    const auto* value_field = f->message_type()->map_value();
    std::vector<std::string> keys;
    if (Eat('}')) return true;
    do {
      std::string key;
      if (!String(&key) || !Eat(':') || Peek('n')) return false;
      for (const auto& k : keys) {
        if (k == key) return false;
      }
      auto* entry = r->AddMessage(m, f);
      const auto* er = entry->GetReflection();
      switch (key_field->cpp_type()) {
        case FD::CPPTYPE_STRING:
          er->SetString(entry, key_field, key);
          break;
        case FD::CPPTYPE_INT32: {
          int32_t v;
          if (!ParseInt(key, &v)) return false;
          er->SetInt32(entry, key_field, v);
          break;
        }
        case FD::CPPTYPE_INT64: {
          int64_t v;
          if (!ParseInt(key, &v)) return false;
          er->SetInt64(entry, key_field, v);
          break;
        }
        case FD::CPPTYPE_UINT32: {
          uint32_t v;
          if (!ParseInt(key, &v)) return false;
          er->SetUInt32(entry, key_field, v);
          break;
        }
        case FD::CPPTYPE_UINT64: {
          uint64_t v;
          if (!ParseInt(key, &v)) return false;
          er->SetUInt64(entry, key_field, v);
          break;
        }
        default:
          return false;  // bool keys: protobuf's parser
      }
      if (!Value(entry, value_field, depth)) return false;
      keys.push_back(std::move(key));
    } while (Eat(','));
    return Eat('}');
  }

  bool Object(pb::Message* m, int depth) {
    if (depth > kMaxDepth || !Eat('{')) return false;
    const auto* d = m->GetDescriptor();
    const auto* r = m->GetReflection();
    if (Eat('}')) return true;
    std::vector<const FD*> seen;
    std::string key;
    do {
      if (!String(&key) || !Eat(':')) return false;
      const FD* f = d->FindFieldByName(key);
      if (f == nullptr) {
        f = d->FindFieldByCamelcaseName(key);
        if (f == nullptr || f->json_name() != key) return false;
      }
      for (const auto* s : seen) {
        if (s == f) return false;
      }
      seen.push_back(f);
      if (const auto* oneof = f->real_containing_oneof();
          oneof != nullptr && r->HasOneof(*m, oneof)) {
        return false;
      }
      if (Peek('n')) return false;  // null: protobuf's parser
      if (f->is_map()) {
        if (!Map(m, f, depth)) return false;
      } else if (f->is_repeated()) {
        if (!Eat('[')) return false;
        if (!Eat(']')) {
          do {
            if (Peek('n') || !Value(m, f, depth)) return false;
          } while (Eat(','));
          if (!Eat(']')) return false;
        }
      } else if (!Value(m, f, depth)) {
        return false;
      }
    } while (Eat(','));
    return Eat('}');
  }

  const char* p_;
  const char* end_;
};

bool Blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

bool FastJsonToMessage(std::string_view json, pb::Message* message) {
  message->Clear();
  if (Blank(json)) return true;
  return Parser(json).Top(message);
}

std::string JsonToMessage(std::string_view json, pb::Message* message) {
  if (FastJsonToMessage(json, message)) return "";
  message->Clear();
  const auto s =
      pb::util::JsonStringToMessage(Blank(json) ? std::string("{}") : std::string(json), message);
  return s.ok() ? "" : std::string(s.message());
}

}  // namespace labelloop::gateway
