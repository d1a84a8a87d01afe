// Password hashing with Argon2id (libsodium crypto_pwhash_str), and the rules a new
// password and username must meet. Plain C++: no gRPC, no database.
#pragma once

#include <string>
#include <string_view>

namespace labelloop::gateway {

// Argon2id hash in libsodium's self-describing string form ("$argon2id$v=19$...").
// Throws std::runtime_error when libsodium cannot allocate the memory it needs.
std::string HashPassword(std::string_view password);

// Constant-time verification against a stored hash; false for a malformed hash.
bool VerifyPassword(std::string_view hash, std::string_view password);

// Empty when acceptable, else what to fix ("password: at least 8 characters").
std::string CheckNewPassword(std::string_view password);
std::string CheckUsername(std::string_view username);

}  // namespace labelloop::gateway
