#include "services/gateway/tokens.hpp"

#include <jwt.h>
#include <sodium.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace labelloop::gateway {
namespace {

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtFree>;

void InitSodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium failed to initialise");
}

}  // namespace

std::string_view TokenErrorText(TokenError error) {
  switch (error) {
    case TokenError::kNone:
      return "valid";
    case TokenError::kMalformed:
      return "access token is malformed";
    case TokenError::kBadSignature:
      return "access token signature is invalid";
    case TokenError::kWrongAlgorithm:
      return "access token must be signed with HS256";
    case TokenError::kExpired:
      return "access token has expired; log in again or use the refresh token";
    case TokenError::kBadClaims:
      return "access token claims are invalid";
  }
  return "access token is invalid";
}

TokenSigner::TokenSigner(std::string key, std::string issuer)
    : key_(std::move(key)), issuer_(std::move(issuer)) {
  if (key_.size() < 16) throw std::invalid_argument("JWT signing key: at least 16 bytes");
}

std::string TokenSigner::Issue(const AccessClaims& claims) const {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw std::runtime_error("jwt_new failed");
  JwtPtr j(raw);
  jwt_add_grant(j.get(), "iss", issuer_.c_str());
  jwt_add_grant(j.get(), "sub", std::to_string(claims.user_id).c_str());
  jwt_add_grant(j.get(), "name", claims.username.c_str());
  jwt_add_grant(j.get(), "role", std::string(RoleName(claims.role)).c_str());
  jwt_add_grant_int(j.get(), "iat", static_cast<long>(claims.issued_at));
  jwt_add_grant_int(j.get(), "exp", static_cast<long>(claims.expires_at));
  jwt_set_alg(j.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(key_.data()),
              static_cast<int>(key_.size()));
  char* encoded = jwt_encode_str(j.get());
  if (encoded == nullptr) throw std::runtime_error("jwt_encode_str failed");
  std::string out(encoded);
  free(encoded);  // libjwt 1.10 allocates with malloc
  return out;
}

VerifyResult TokenSigner::Verify(std::string_view token, int64_t now) const {
  VerifyResult result;
  if (token.empty() || token.size() > 8192) return result;
  const std::string t(token);
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, t.c_str(), reinterpret_cast<const unsigned char*>(key_.data()),
                 static_cast<int>(key_.size())) != 0) {
    // Tell a forged or re-signed token from garbage by its header's "alg".
    const auto dot = token.find('.');
    if (dot != std::string_view::npos && dot > 0) {
      std::string header(dot, '\0');
      size_t len = 0;
      if (sodium_base642bin(reinterpret_cast<unsigned char*>(header.data()), header.size(),
                            token.data(), dot, nullptr, &len, nullptr,
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0) {
        header.resize(len);
        const auto j = nlohmann::json::parse(header, nullptr, false);
        if (j.is_object() && j.contains("alg") && j["alg"].is_string()) {
          result.error =
              j["alg"] == "HS256" ? TokenError::kBadSignature : TokenError::kWrongAlgorithm;
        }
      }
    }
    return result;
  }
  JwtPtr j(raw);
  if (jwt_get_alg(j.get()) != JWT_ALG_HS256) {
    result.error = TokenError::kWrongAlgorithm;
    return result;
  }
  const char* iss = jwt_get_grant(j.get(), "iss");
  const char* sub = jwt_get_grant(j.get(), "sub");
  const char* name = jwt_get_grant(j.get(), "name");
  const char* role = jwt_get_grant(j.get(), "role");
  const long exp = jwt_get_grant_int(j.get(), "exp");
  const long iat = jwt_get_grant_int(j.get(), "iat");
  auto parsed_role = role != nullptr ? ParseRole(role) : std::nullopt;
  if (iss == nullptr || issuer_ != iss || sub == nullptr || name == nullptr || !parsed_role ||
      exp <= 0) {
    result.error = TokenError::kBadClaims;
    return result;
  }
  try {
    result.claims.user_id = std::stoll(sub);
  } catch (const std::exception&) {
    result.error = TokenError::kBadClaims;
    return result;
  }
  result.claims.username = name;
  result.claims.role = *parsed_role;
  result.claims.issued_at = iat;
  result.claims.expires_at = exp;
  result.error = now >= exp ? TokenError::kExpired : TokenError::kNone;
  return result;
}

std::string RandomToken(size_t bytes) {
  InitSodium();
  std::string buf(bytes, '\0');
  randombytes_buf(buf.data(), buf.size());
  std::string out(sodium_base64_ENCODED_LEN(bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(buf.data()),
                    buf.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

std::string HashSecret(std::string_view secret) {
  InitSodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex);
}

std::string NewApiKey() { return "llk_" + RandomToken(32); }
std::string NewRefreshToken() { return "llr_" + RandomToken(32); }
std::string ApiKeyPrefix(std::string_view key) { return std::string(key.substr(0, 12)); }

}  // namespace labelloop::gateway
