// Access tokens (JWT, HS256, via libjwt) and opaque secrets (refresh tokens, API keys)
// that are stored only as SHA-256 hashes. Plain C++: no gRPC, no database.
//
//   TokenSigner signer(key, "labelloop");
//   std::string jwt = signer.Issue({.user_id = 1, .username = "ann", .role = Role::kAdmin,
//                                   .issued_at = now, .expires_at = now + 900});
//   auto v = signer.Verify(jwt, now);   // v.error == TokenError::kNone → v.claims
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "services/gateway/roles.hpp"

namespace labelloop::gateway {

struct AccessClaims {
  int64_t user_id = 0;
  std::string username;
  Role role = Role::kAnnotator;
  int64_t issued_at = 0;   // unix seconds
  int64_t expires_at = 0;  // unix seconds
};

enum class TokenError { kNone, kMalformed, kBadSignature, kWrongAlgorithm, kExpired, kBadClaims };
std::string_view TokenErrorText(TokenError error);

struct VerifyResult {
  TokenError error = TokenError::kMalformed;
  AccessClaims claims;
};

class TokenSigner {
 public:
  TokenSigner(std::string key, std::string issuer);
  std::string Issue(const AccessClaims& claims) const;
  VerifyResult Verify(std::string_view token, int64_t now) const;

 private:
  std::string key_;
  std::string issuer_;
};

// `bytes` random bytes, base64url without padding.
std::string RandomToken(size_t bytes);
// Hex SHA-256 of a secret, what the database stores.
std::string HashSecret(std::string_view secret);

// Opaque secret formats: "llk_<43 chars>" (API key), "llr_<43 chars>" (refresh token).
std::string NewApiKey();
std::string NewRefreshToken();
// The first characters of a key, kept in clear to let people recognise it.
std::string ApiKeyPrefix(std::string_view key);

}  // namespace labelloop::gateway
