// Who is calling (JWT or API key → Principal) and what they may touch (project
// membership), with short-lived caches so the hot path costs no database round trip.
// A cached API key or membership is at most `cache_ms` old; changes made through this
// gateway replica invalidate its cache at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "services/gateway/roles.hpp"
#include "services/gateway/storage/store.hpp"
#include "services/gateway/tokens.hpp"

namespace labelloop::gateway {

// The credential headers of a call (gRPC metadata or HTTP headers).
struct Credentials {
  std::string authorization;  // "Bearer <jwt>" or "ApiKey <key>"
  std::string api_key;        // x-api-key
};

struct AuthResult {
  std::optional<Principal> principal;
  // Empty with no principal: no credentials were sent. Else why they were refused.
  std::string error;
};

class Authenticator {
 public:
  Authenticator(const TokenSigner& signer, Store& store, int64_t cache_ms);

  AuthResult Authenticate(const Credentials& credentials);
  // The same answer from the caches alone, without touching the database; nullopt when
  // one is needed (then call Authenticate).
  std::optional<AuthResult> AuthenticateCached(const Credentials& credentials);
  // The caller's membership role in a project (nullopt: not a member).
  std::optional<Role> Membership(const Principal& caller, int64_t project_id);
  // The same from the cache alone; nullopt when not cached (then call Membership).
  std::optional<std::optional<Role>> MembershipCached(const Principal& caller, int64_t project_id);
  std::set<int64_t> ProjectsOf(const Principal& caller);
  void ForgetMembership(int64_t user_id, int64_t project_id);
  // Drops the cached account state of a user (disabled/enabled here: effective at once on
  // this replica, within the cache time on the others).
  void ForgetUser(int64_t user_id);
  void ForgetApiKey(const std::string& key_hash);
  void ForgetAllApiKeys();

 private:
  using Clock = std::chrono::steady_clock;
  // cached_only: nullopt instead of a database lookup.
  std::optional<AuthResult> Authenticate(const Credentials& credentials, bool cached_only);
  std::optional<AuthResult> FromApiKey(const std::string& key, bool cached_only);
  // Whether the account still exists and is not disabled (cached for the cache time): an
  // access token stays valid until it expires, the account behind it may not.
  std::optional<bool> UserActive(int64_t user_id, bool cached_only);

  const TokenSigner& signer_;
  Store& store_;
  std::chrono::milliseconds ttl_;
  std::mutex mu_;
  struct CachedKey {
    std::optional<Principal> principal;
    Clock::time_point until;
  };
  std::unordered_map<std::string, CachedKey> keys_;
  struct CachedMembership {
    std::optional<Role> role;
    Clock::time_point until;
  };
  std::map<std::pair<int64_t, int64_t>, CachedMembership> members_;
  struct CachedUser {
    bool active;
    Clock::time_point until;
  };
  std::unordered_map<int64_t, CachedUser> users_;
  // Verified access tokens → their claims, until they expire (saves the JSON parse and
  // HMAC of every call; a token's claims never change).
  std::unordered_map<std::string, AccessClaims> tokens_;
};

}  // namespace labelloop::gateway
