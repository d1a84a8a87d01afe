#include "services/gateway/authn.hpp"

#include <ctime>

namespace labelloop::gateway {
namespace {

constexpr size_t kMaxCacheEntries = 100000;

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

}  // namespace

Authenticator::Authenticator(const TokenSigner& signer, Store& store, int64_t cache_ms)
    : signer_(signer), store_(store), ttl_(cache_ms) {}

AuthResult Authenticator::Authenticate(const Credentials& credentials) {
  return *Authenticate(credentials, false);
}

std::optional<AuthResult> Authenticator::AuthenticateCached(const Credentials& credentials) {
  return Authenticate(credentials, true);
}

std::optional<AuthResult> Authenticator::Authenticate(const Credentials& credentials,
                                                      bool cached_only) {
  if (!credentials.api_key.empty()) return FromApiKey(Trim(credentials.api_key), cached_only);
  const std::string& h = credentials.authorization;
  if (h.empty()) return AuthResult{};
  if (StartsWith(h, "ApiKey ")) return FromApiKey(Trim(h.substr(7)), cached_only);
  if (!StartsWith(h, "Bearer ")) {
    return AuthResult{std::nullopt,
                      "authorization: expected 'Bearer <access token>' or 'ApiKey <key>'"};
  }
  const std::string token = Trim(h.substr(7));
  const auto now = static_cast<int64_t>(std::time(nullptr));
  std::optional<AccessClaims> claims;
  {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(token);
    if (it != tokens_.end()) {
      if (now < it->second.expires_at)
        claims = it->second;
      else
        tokens_.erase(it);
    }
  }
  if (!claims) {
    auto v = signer_.Verify(token, now);
    if (v.error != TokenError::kNone) {
      return AuthResult{std::nullopt, std::string(TokenErrorText(v.error))};
    }
    std::lock_guard lock(mu_);
    if (tokens_.size() > kMaxCacheEntries) tokens_.clear();
    tokens_[token] = v.claims;
    claims = v.claims;
  }
  auto active = UserActive(claims->user_id, cached_only);
  if (!active) return std::nullopt;
  if (!*active) return AuthResult{std::nullopt, "this account no longer exists or is disabled"};
  Principal p;
  p.user_id = claims->user_id;
  p.username = claims->username;
  p.role = claims->role;
  return AuthResult{p, ""};
}

std::optional<bool> Authenticator::UserActive(int64_t user_id, bool cached_only) {
  const auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(user_id);
    if (it != users_.end() && it->second.until > now) return it->second.active;
  }
  if (cached_only) return std::nullopt;
  auto user = store_.GetUser(user_id);
  const bool active = user.has_value() && !user->disabled;
  std::lock_guard lock(mu_);
  if (users_.size() > kMaxCacheEntries) users_.clear();
  users_[user_id] = {active, now + ttl_};
  return active;
}

void Authenticator::ForgetUser(int64_t user_id) {
  std::lock_guard lock(mu_);
  users_.erase(user_id);
}

std::optional<AuthResult> Authenticator::FromApiKey(const std::string& key, bool cached_only) {
  const std::string hash = HashSecret(key);
  const auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(hash);
    if (it != keys_.end() && it->second.until > now) {
      if (it->second.principal) return AuthResult{it->second.principal, ""};
      return AuthResult{std::nullopt, "API key is unknown or revoked"};
    }
  }
  if (cached_only) return std::nullopt;
  auto found = store_.FindApiKey(hash);
  std::optional<Principal> principal;
  if (found && !found->second.disabled) {
    Principal p;
    p.user_id = found->second.id;
    p.username = found->second.username;
    p.role = found->second.role;
    p.api_key_id = found->first.id;
    principal = p;
  }
  {
    std::lock_guard lock(mu_);
    if (keys_.size() > kMaxCacheEntries) keys_.clear();
    keys_[hash] = {principal, now + ttl_};
  }
  if (principal) return AuthResult{principal, ""};
  return AuthResult{std::nullopt, "API key is unknown or revoked"};
}

std::optional<Role> Authenticator::Membership(const Principal& caller, int64_t project_id) {
  const auto key = std::make_pair(caller.user_id, project_id);
  const auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = members_.find(key);
    if (it != members_.end() && it->second.until > now) return it->second.role;
  }
  auto role = store_.Membership(caller.user_id, project_id);
  std::lock_guard lock(mu_);
  if (members_.size() > kMaxCacheEntries) members_.clear();
  members_[key] = {role, now + ttl_};
  return role;
}

std::optional<std::optional<Role>> Authenticator::MembershipCached(const Principal& caller,
                                                                   int64_t project_id) {
  const auto key = std::make_pair(caller.user_id, project_id);
  std::lock_guard lock(mu_);
  auto it = members_.find(key);
  if (it != members_.end() && it->second.until > Clock::now()) return it->second.role;
  return std::nullopt;
}

std::set<int64_t> Authenticator::ProjectsOf(const Principal& caller) {
  return store_.ProjectsOf(caller.user_id);
}

void Authenticator::ForgetMembership(int64_t user_id, int64_t project_id) {
  std::lock_guard lock(mu_);
  members_.erase(std::make_pair(user_id, project_id));
}

void Authenticator::ForgetApiKey(const std::string& key_hash) {
  std::lock_guard lock(mu_);
  keys_.erase(key_hash);
}

void Authenticator::ForgetAllApiKeys() {
  std::lock_guard lock(mu_);
  keys_.clear();
}

}  // namespace labelloop::gateway
