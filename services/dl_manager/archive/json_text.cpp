#include "services/dl_manager/archive/json_text.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace labelloop::dl_manager {

void AppendFloat(std::string* out, float v) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, ec == std::errc() ? end : buf);
}

bool ParseFloatArray(std::string_view text, std::vector<float>* out) {
  out->clear();
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return false;
  const char* p = text.data() + 1;
  const char* end = text.data() + text.size() - 1;
  if (p == end) return true;
  for (;;) {
    const char* comma = p;
    while (comma < end && *comma != ',') ++comma;
    std::string_view token(p, static_cast<size_t>(comma - p));
    float value = 0;
    if (token == "NULL" || token == "NaN") {
      value = std::numeric_limits<float>::quiet_NaN();
    } else if (token == "Infinity") {
      value = std::numeric_limits<float>::infinity();
    } else if (token == "-Infinity") {
      value = -std::numeric_limits<float>::infinity();
    } else {
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
      if (ec != std::errc() || ptr != token.data() + token.size()) return false;
    }
    out->push_back(value);
    if (comma == end) return true;
    p = comma + 1;
  }
}

}  // namespace labelloop::dl_manager
