// Builds zip archives for tests with libzip, entry names taken verbatim (so tests can
// make hostile ones: "../x.png", "/abs.png").
#pragma once

#include <fcntl.h>
#include <unistd.h>
#include <zip.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace labelloop::labeling::ingest::test {

using ZipEntries = std::vector<std::pair<std::string, std::string>>;

// Writes the zip to a new temporary file and returns its path.
inline std::string MakeZipFile(const ZipEntries& entries) {
  char path[] = "/tmp/ingest-zip-test-XXXXXX";
  const int fd = mkstemp(path);
  close(fd);
  int err = 0;
  zip_t* z = zip_open(path, ZIP_TRUNCATE, &err);
  for (const auto& [name, bytes] : entries) {
    void* copy = std::malloc(bytes.size() + 1);
    std::memcpy(copy, bytes.data(), bytes.size());
    zip_source_t* src = zip_source_buffer(z, copy, bytes.size(), 1);
    zip_file_add(z, name.c_str(), src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
  }
  zip_close(z);
  return path;
}

inline std::string MakeZip(const ZipEntries& entries) {
  const std::string path = MakeZipFile(entries);
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  unlink(path.c_str());
  return ss.str();
}

inline int MakeZipFd(const ZipEntries& entries) {
  const std::string path = MakeZipFile(entries);
  const int fd = open(path.c_str(), O_RDONLY);
  unlink(path.c_str());
  return fd;
}

}  // namespace labelloop::labeling::ingest::test
