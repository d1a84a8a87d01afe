#include "services/labeling/ingest/values.hpp"

#include <charconv>
#include <cmath>

namespace labelloop::labeling::ingest {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool LeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

}  // namespace

bool ParseFloat(std::string_view text, float* out) {
  text = Trim(text);
  if (text.empty()) return false;
  if (text.front() == '+') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  if (ec != std::errc() || ptr != end) return false;
  return std::isfinite(*out);
}

bool ParseTimestamp(std::string_view s, int64_t* micros, std::string* error) {
  s = Trim(s);
  if (s.empty()) {
    *error = "empty timestamp";
    return false;
  }
  // Unix seconds: digits with an optional fraction.
  if (s.size() < 10 || s[4] != '-') {
    double secs = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), secs);
    if (ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(secs) &&
        std::fabs(secs) < 1e13) {
      *micros = static_cast<int64_t>(std::llround(secs * 1e6));
      return true;
    }
    *error = "'" + std::string(s.substr(0, 40)) +
             "' is not an ISO-8601 time (e.g. 2024-05-01T12:30:00Z) nor Unix seconds";
    return false;
  }
  const std::string bad =
      "'" + std::string(s.substr(0, 40)) + "' is not an ISO-8601 time (e.g. 2024-05-01T12:30:00Z)";
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(s, 0, 4, &year) || s[4] != '-' || !Digits(s, 5, 2, &month) || s.size() < 10 ||
      s[7] != '-' || !Digits(s, 8, 2, &day)) {
    *error = bad;
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 ||
      day > kDays[month - 1] + (month == 2 && LeapYear(year) ? 1 : 0)) {
    *error = "'" + std::string(s.substr(0, 10)) + "' is not a calendar date";
    return false;
  }
  size_t pos = 10;
  int64_t frac_us = 0;
  int64_t offset_s = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') {
      *error = bad;
      return false;
    }
    ++pos;
    if (!Digits(s, pos, 2, &hour) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
        !Digits(s, pos + 3, 2, &minute)) {
      *error = bad;
      return false;
    }
    pos += 5;
    if (pos < s.size() && s[pos] == ':') {
      if (!Digits(s, pos + 1, 2, &second)) {
        *error = bad;
        return false;
      }
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        int64_t scale = 100000;
        const size_t digits_start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          frac_us += (s[pos] - '0') * scale;
          scale /= 10;
          ++pos;
        }
        if (pos == digits_start) {
          *error = bad;
          return false;
        }
      }
    }
    if (hour > 23 || minute > 59 || second > 59) {
      *error = "'" + std::string(s.substr(0, 40)) + "': time of day out of range";
      return false;
    }
    if (pos < s.size()) {
      if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
      } else if (s[pos] == '+' || s[pos] == '-') {
        const int sign = s[pos] == '-' ? -1 : 1;
        int oh = 0, om = 0;
        if (!Digits(s, pos + 1, 2, &oh)) {
          *error = bad;
          return false;
        }
        pos += 3;
        if (pos < s.size() && s[pos] == ':') ++pos;
        if (pos < s.size()) {
          if (!Digits(s, pos, 2, &om)) {
            *error = bad;
            return false;
          }
          pos += 2;
        }
        if (oh > 15 || om > 59) {
          *error = "'" + std::string(s.substr(0, 40)) + "': time zone offset out of range";
          return false;
        }
        offset_s = sign * (oh * 3600 + om * 60);
      }
    }
    if (pos != s.size()) {
      *error = bad;
      return false;
    }
  }
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  *micros = secs * 1000000 + frac_us;
  return true;
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0) return false;
      ++p;
      continue;
    }
    int n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

}  // namespace labelloop::labeling::ingest
