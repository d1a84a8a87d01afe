#include "services/labeling/ingest/zip_archive.hpp"

#include <unistd.h>
#include <zip.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "services/labeling/ingest/values.hpp"

namespace labelloop::labeling::ingest {

std::string CheckEntryName(std::string_view name) {
  if (name.empty()) return "empty entry name";
  if (!IsValidUtf8(name)) return "entry name is not valid UTF-8";
  if (name.front() == '/' || name.front() == '\\') return "absolute path in the archive";
  if (name.size() >= 2 && name[1] == ':' &&
      ((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z'))) {
    return "absolute path (drive letter) in the archive";
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    if (end == std::string_view::npos) end = name.size();
    if (name.substr(start, end - start) == "..") return "path with '..' escapes the archive";
    start = end + 1;
  }
  return "";
}

Spool::Spool(const std::string& dir) {
  std::string path = (dir.empty() ? std::string("/tmp") : dir) + "/labelloop-upload-XXXXXX";
  fd_ = mkstemp(path.data());
  if (fd_ < 0) {
    throw std::runtime_error("cannot create a spool file in " + dir + ": " + std::strerror(errno));
  }
  unlink(path.c_str());  // gone from the directory; freed when closed
}

Spool::~Spool() {
  if (fd_ >= 0) close(fd_);
}

void Spool::Write(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("cannot spool the upload: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

int Spool::Release() {
  lseek(fd_, 0, SEEK_SET);
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

ZipArchive::~ZipArchive() {
  if (zip_ != nullptr) zip_discard(static_cast<zip_t*>(zip_));
}

std::string ZipArchive::Open(int fd) {
  int err = 0;
  zip_t* z = zip_fdopen(fd, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (z == nullptr) {
    close(fd);
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    std::string msg = std::string("not a readable zip archive: ") + zip_error_strerror(&ze);
    zip_error_fini(&ze);
    return msg;
  }
  zip_ = z;
  return "";
}

std::string ZipArchive::List(const ZipLimits& limits, std::vector<ZipEntry>* entries) {
  auto* z = static_cast<zip_t*>(zip_);
  const zip_int64_t n = zip_get_num_entries(z, 0);
  if (n < 0) return "cannot list the zip's entries";
  if (n > limits.max_entries) {
    return "the zip has " + std::to_string(n) + " entries, more than the limit of " +
           std::to_string(limits.max_entries);
  }
  uint64_t total = 0;
  entries->clear();
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_GUESS, &st) != 0) {
      return "entry " + std::to_string(i) + ": unreadable header";
    }
    ZipEntry e;
    e.index = static_cast<uint64_t>(i);
    e.name = st.name != nullptr ? st.name : "";
    e.size = (st.valid & ZIP_STAT_SIZE) != 0 ? st.size : 0;
    e.comp_size = (st.valid & ZIP_STAT_COMP_SIZE) != 0 ? st.comp_size : 0;
    e.directory = !e.name.empty() && e.name.back() == '/';
    total += e.size;
    if (total > static_cast<uint64_t>(limits.max_uncompressed_bytes)) {
      return "entry '" + e.name + "': the zip's uncompressed size exceeds the limit of " +
             std::to_string(limits.max_uncompressed_bytes) + " bytes";
    }
    const double ratio =
        static_cast<double>(e.size) / static_cast<double>(e.comp_size == 0 ? 1 : e.comp_size);
    if (e.size > 0 && ratio > limits.max_ratio) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.0f", ratio);
      return "entry '" + e.name + "': compression ratio " + buf + " exceeds the limit of " +
             std::to_string(static_cast<int64_t>(limits.max_ratio)) + " (a compression bomb?)";
    }
    entries->push_back(std::move(e));
  }
  return "";
}

std::string ZipArchive::Read(const ZipEntry& entry, int64_t max_bytes, std::string* out) {
  if (static_cast<int64_t>(entry.size) > max_bytes) {
    return std::to_string(entry.size) + " bytes, more than the limit of " +
           std::to_string(max_bytes);
  }
  zip_file_t* f = zip_fopen_index(static_cast<zip_t*>(zip_), entry.index, 0);
  if (f == nullptr) {
    return std::string("cannot open the entry: ") + zip_strerror(static_cast<zip_t*>(zip_));
  }
  // One byte more than declared: a header that lies about the size is caught.
  out->resize(entry.size + 1);
  zip_int64_t got = 0;
  std::string err;
  while (static_cast<uint64_t>(got) < out->size()) {
    const zip_int64_t n = zip_fread(f, out->data() + got, out->size() - static_cast<uint64_t>(got));
    if (n < 0) {
      err = std::string("corrupt entry: ") + zip_file_strerror(f);
      break;
    }
    if (n == 0) break;
    got += n;
  }
  zip_fclose(f);
  if (!err.empty()) return err;
  if (static_cast<uint64_t>(got) != entry.size) {
    return "entry data does not match its declared size " + std::to_string(entry.size);
  }
  out->resize(static_cast<size_t>(got));
  return "";
}

}  // namespace labelloop::labeling::ingest
