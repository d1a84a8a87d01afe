// Opaque keyset-pagination cursors: the last id of a page plus a fingerprint of the
// filters it was made for, base64url-encoded. A cursor used with other filters, or
// garbled, is refused rather than silently giving a wrong page.
#pragma once

#include <cstdint>
#include <string>

namespace labelloop::labeling {

// FNV-1a 64 of a canonical description of the filters.
uint64_t FilterFingerprint(const std::string& canonical_filters);

std::string EncodeCursor(int64_t last_id, uint64_t fingerprint);

struct DecodedCursor {
  int64_t last_id = 0;  // 0 for the first page (empty token)
  std::string error;    // names the field "page_token"
  bool ok() const { return error.empty(); }
};
DecodedCursor DecodeCursor(const std::string& token, uint64_t fingerprint);

}  // namespace labelloop::labeling
