#include "services/gateway/password.hpp"

#include <sodium.h>

#include <stdexcept>

namespace labelloop::gateway {
namespace {

void InitSodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium failed to initialise");
}

}  // namespace

std::string HashPassword(std::string_view password) {
  InitSodium();
  char out[crypto_pwhash_STRBYTES];
  // INTERACTIVE limits: ~64 MiB and a few tens of ms, the libsodium recommendation for logins.
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    throw std::runtime_error("password hashing ran out of memory");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view hash, std::string_view password) {
  InitSodium();
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  std::string h(hash);  // NUL-terminated copy
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

std::string CheckNewPassword(std::string_view password) {
  if (password.size() < 8) return "password: at least 8 characters";
  if (password.size() > 1024) return "password: at most 1024 characters";
  return "";
}

std::string CheckUsername(std::string_view username) {
  if (username.size() < 3 || username.size() > 64) return "username: 3 to 64 characters";
  for (char c : username) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return "username: only letters, digits, '.', '_' and '-'";
  }
  return "";
}

}  // namespace labelloop::gateway
