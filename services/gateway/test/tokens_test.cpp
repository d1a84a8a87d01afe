#include "services/gateway/tokens.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

namespace labelloop::gateway {
namespace {

const std::string kKey = "0123456789abcdef0123456789abcdef";

AccessClaims Claims(int64_t now) {
  return {.user_id = 42,
          .username = "ann",
          .role = Role::kManager,
          .issued_at = now,
          .expires_at = now + 900};
}

std::string B64(const std::string& s) {
  std::string out(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()),
                    s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

TEST(Tokens, IssuedTokenVerifiesWithItsClaims) {
  TokenSigner signer(kKey, "labelloop");
  const auto jwt = signer.Issue(Claims(1000));
  auto v = signer.Verify(jwt, 1001);
  ASSERT_EQ(v.error, TokenError::kNone);
  EXPECT_EQ(v.claims.user_id, 42);
  EXPECT_EQ(v.claims.username, "ann");
  EXPECT_EQ(v.claims.role, Role::kManager);
  EXPECT_EQ(v.claims.expires_at, 1900);
}

TEST(Tokens, ExpiredTokenIsRefused) {
  TokenSigner signer(kKey, "labelloop");
  const auto jwt = signer.Issue(Claims(1000));
  EXPECT_EQ(signer.Verify(jwt, 1900).error, TokenError::kExpired);
  EXPECT_EQ(signer.Verify(jwt, 5000).error, TokenError::kExpired);
}

TEST(Tokens, WronglySignedTokenIsRefused) {
  TokenSigner signer(kKey, "labelloop");
  TokenSigner other("another key of enough length!!!!", "labelloop");
  EXPECT_EQ(signer.Verify(other.Issue(Claims(1000)), 1001).error, TokenError::kBadSignature);
}

TEST(Tokens, TamperedPayloadIsRefused) {
  TokenSigner signer(kKey, "labelloop");
  auto jwt = signer.Issue(Claims(1000));
  // Replace the payload with one claiming admin, keeping the original signature.
  const auto first = jwt.find('.');
  const auto second = jwt.find('.', first + 1);
  const std::string payload =
      B64(R"({"iss":"labelloop","sub":"42","name":"ann","role":"admin","iat":1000,"exp":999999})");
  const std::string forged = jwt.substr(0, first + 1) + payload + jwt.substr(second);
  EXPECT_EQ(signer.Verify(forged, 1001).error, TokenError::kBadSignature);
  // A flipped character in the signature.
  auto flipped = jwt;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_NE(signer.Verify(flipped, 1001).error, TokenError::kNone);
}

TEST(Tokens, UnsignedAlgNoneTokenIsRefused) {
  TokenSigner signer(kKey, "labelloop");
  const std::string header = B64(R"({"alg":"none","typ":"JWT"})");
  const std::string payload =
      B64(R"({"iss":"labelloop","sub":"1","name":"root","role":"admin","iat":1000,"exp":999999})");
  EXPECT_NE(signer.Verify(header + "." + payload + ".", 1001).error, TokenError::kNone);
}

TEST(Tokens, GarbageIsMalformed) {
  TokenSigner signer(kKey, "labelloop");
  EXPECT_EQ(signer.Verify("", 1).error, TokenError::kMalformed);
  EXPECT_EQ(signer.Verify("abc", 1).error, TokenError::kMalformed);
  EXPECT_NE(signer.Verify("a.b.c", 1).error, TokenError::kNone);
}

TEST(Tokens, OtherIssuerIsRefused) {
  TokenSigner signer(kKey, "labelloop");
  TokenSigner foreign(kKey, "someone-else");
  EXPECT_EQ(signer.Verify(foreign.Issue(Claims(1000)), 1001).error, TokenError::kBadClaims);
}

TEST(Tokens, ShortKeyIsRejected) {
  EXPECT_THROW(TokenSigner("short", "labelloop"), std::invalid_argument);
}

TEST(Secrets, KeysAreRandomPrefixedAndHashedStably) {
  const auto a = NewApiKey();
  const auto b = NewApiKey();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("llk_", 0), 0u);
  EXPECT_EQ(NewRefreshToken().rfind("llr_", 0), 0u);
  EXPECT_GE(a.size(), 40u);
  EXPECT_EQ(HashSecret(a), HashSecret(a));
  EXPECT_NE(HashSecret(a), HashSecret(b));
  EXPECT_EQ(HashSecret(a).size(), 64u);
  EXPECT_EQ(ApiKeyPrefix(a), a.substr(0, 12));
}

}  // namespace
}  // namespace labelloop::gateway
