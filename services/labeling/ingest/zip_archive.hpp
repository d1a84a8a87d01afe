// Reading a zip upload safely: the stream is spooled to an unlinked temporary file,
// then entries are listed and checked BEFORE anything is extracted (path traversal,
// total uncompressed size, compression ratio, entry count), and read one at a time
// into memory with a byte limit. Nothing is ever written to disk under an entry's name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace labelloop::labeling::ingest {

// "" when the entry name is safe to use, else why not ("..", absolute path, ...).
std::string CheckEntryName(std::string_view name);

struct ZipEntry {
  uint64_t index = 0;
  std::string name;
  uint64_t size = 0;       // declared uncompressed size
  uint64_t comp_size = 0;  // compressed size
  bool directory = false;
};

struct ZipLimits {
  int64_t max_uncompressed_bytes = 0;
  double max_ratio = 0;
  int64_t max_entries = 0;
};

// A temporary file receiving the upload's bytes.
class Spool {
 public:
  explicit Spool(const std::string& dir);  // throws std::runtime_error
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  void Write(std::string_view bytes);  // throws std::runtime_error (disk full, ...)
  // Hands the file descriptor over (to ZipArchive), rewound.
  int Release();
  // The file descriptor, still owned by the spool.
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

class ZipArchive {
 public:
  ZipArchive() = default;
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  // Takes ownership of fd. Returns "" or why the file is not a readable zip.
  std::string Open(int fd);
  // Lists the entries and applies the limits; returns "" or the problem, naming the
  // entry at fault (fatal for the whole upload).
  std::string List(const ZipLimits& limits, std::vector<ZipEntry>* entries);
  // Reads one entry whole, refusing more than max_bytes (even when the header lies).
  std::string Read(const ZipEntry& entry, int64_t max_bytes, std::string* out);

 private:
  void* zip_ = nullptr;  // zip_t*
};

}  // namespace labelloop::labeling::ingest
