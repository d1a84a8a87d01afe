// Standard base64 (RFC 4648, with or without padding; whitespace ignored) decoding.
#pragma once

#include <string>
#include <string_view>

namespace labelloop::labeling::ingest {

// False when `in` is not base64.
bool DecodeBase64(std::string_view in, std::string* out);

}  // namespace labelloop::labeling::ingest
