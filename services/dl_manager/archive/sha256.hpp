// Incremental SHA-256 (OpenSSL's EVP, which uses the CPU's SHA extensions), for the
// checksums of archive entries and archives computed while they stream past.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace labelloop::dl_manager {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // The digest as 64 lowercase hex digits; the object is then reset.
  std::string HexDigest();

  static std::string Of(std::string_view data);

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace labelloop::dl_manager
