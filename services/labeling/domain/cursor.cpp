#include "services/labeling/domain/cursor.hpp"

#include <cinttypes>
#include <cstdio>

namespace labelloop::labeling {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64Url(const std::string& in) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 0x3F];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 0x3F];
  return out;
}

bool FromBase64Url(const std::string& in, std::string* out) {
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '-') v = 62;
    if (c == '_') v = 63;
    if (v < 0) return false;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return true;
}

}  // namespace

uint64_t FilterFingerprint(const std::string& canonical_filters) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : canonical_filters) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string EncodeCursor(int64_t last_id, uint64_t fingerprint) {
  char text[64];
  std::snprintf(text, sizeof text, "c1:%" PRId64 ":%016" PRIx64, last_id, fingerprint);
  return Base64Url(text);
}

DecodedCursor DecodeCursor(const std::string& token, uint64_t fingerprint) {
  DecodedCursor out;
  if (token.empty()) return out;
  std::string text;
  if (token.size() > 80 || !FromBase64Url(token, &text)) {
    out.error = "page_token: not a token returned by this call";
    return out;
  }
  int64_t id = 0;
  uint64_t fp = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "c1:%" SCNd64 ":%16" SCNx64 "%n", &id, &fp, &consumed) != 2 ||
      consumed != static_cast<int>(text.size()) || id < 0) {
    out.error = "page_token: not a token returned by this call";
    return out;
  }
  if (fp != fingerprint) {
    out.error = "page_token: was made for other filters; start again without it";
    return out;
  }
  out.last_id = id;
  return out;
}

}  // namespace labelloop::labeling
