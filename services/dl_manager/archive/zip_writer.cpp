#include "services/dl_manager/archive/zip_writer.hpp"

#include <zip.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "services/dl_manager/archive/sha256.hpp"

namespace labelloop::dl_manager {

struct ZipWriter::Source {
  ZipWriter* writer = nullptr;
  std::unique_ptr<EntryProducer> producer;
  EntryStats stats;
  Sha256 hash;
  std::string buffer;
  size_t pos = 0;
  bool more = true;
  bool opened = false;
  time_t mtime = 0;
  zip_error_t error{};

  // libzip's callback; never lets an exception through the C code.
  static zip_int64_t Callback(void* userdata, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    auto* self = static_cast<Source*>(userdata);
    try {
      return self->Handle(data, len, cmd);
    } catch (...) {
      if (!self->writer->error_) self->writer->error_ = std::current_exception();
      zip_error_set(&self->error, ZIP_ER_READ, EIO);
      return -1;
    }
  }

  zip_int64_t Handle(void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
    switch (cmd) {
      case ZIP_SOURCE_OPEN:
        if (opened) {
          // Producers are single-pass; libzip reads each source once when writing.
          zip_error_set(&error, ZIP_ER_OPNOTSUPP, 0);
          return -1;
        }
        opened = true;
        producer->Open();
        return 0;
      case ZIP_SOURCE_READ: {
        // Hands out what is buffered, a short read when less than len is left (libzip
        // reads again); the next piece is asked for only once the buffer is used up, so
        // bytes are never moved within it.
        while (more && pos == buffer.size()) {
          buffer.clear();
          pos = 0;
          more = producer->Next(&buffer);
        }
        const size_t n = std::min<size_t>(len, buffer.size() - pos);
        std::memcpy(data, buffer.data() + pos, n);
        hash.Update(buffer.data() + pos, n);
        stats.bytes += n;
        pos += n;
        return static_cast<zip_int64_t>(n);
      }
      case ZIP_SOURCE_CLOSE:
        if (!more && pos == buffer.size()) {
          stats.records = producer->records();
          stats.sha256 = hash.HexDigest();
          writer->stats_.push_back(stats);
          producer.reset();  // frees its cursor or buffers now
          std::string().swap(buffer);
        }
        return 0;
      case ZIP_SOURCE_STAT: {
        auto* st = static_cast<zip_stat_t*>(data);
        zip_stat_init(st);
        st->mtime = mtime;
        st->valid |= ZIP_STAT_MTIME;  // size unknown: libzip writes zip64 headers
        return sizeof(zip_stat_t);
      }
      case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&error, data, len);
      case ZIP_SOURCE_FREE:
        return 0;
      case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                              ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                              -1);
      default:
        zip_error_set(&error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
  }
};

ThreadedProducer::ThreadedProducer(std::unique_ptr<EntryProducer> inner, size_t chunk_bytes,
                                   size_t max_chunks)
    : inner_(std::move(inner)),
      chunk_bytes_(std::max<size_t>(1, chunk_bytes)),
      max_chunks_(std::max<size_t>(1, max_chunks)) {}

ThreadedProducer::~ThreadedProducer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ThreadedProducer::Open() {
  thread_ = std::thread([this] { Run(); });
}

void ThreadedProducer::Run() {
  try {
    inner_->Open();
    bool more = true;
    while (more) {
      std::string chunk;
      chunk.reserve(chunk_bytes_ + chunk_bytes_ / 4);
      while (more && chunk.size() < chunk_bytes_) more = inner_->Next(&chunk);
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || chunks_.size() < max_chunks_; });
      if (stop_) return;
      chunks_.push_back(std::move(chunk));
      if (!more) {
        records_ = inner_->records();
        finished_ = true;
      }
      lock.unlock();
      cv_.notify_all();
    }
  } catch (...) {
    {
      std::lock_guard lock(mu_);
      error_ = std::current_exception();
      finished_ = true;
    }
    cv_.notify_all();
  }
}

bool ThreadedProducer::Next(std::string* out) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !chunks_.empty() || finished_; });
  if (error_) std::rethrow_exception(error_);
  if (!chunks_.empty()) {
    if (out->empty()) {
      out->swap(chunks_.front());  // no copy
    } else {
      out->append(chunks_.front());
    }
    chunks_.pop_front();
  }
  const bool more = !(finished_ && chunks_.empty());
  lock.unlock();
  cv_.notify_all();
  return more;
}

ZipWriter::ZipWriter(const std::string& path, int deflate_level)
    : path_(path), level_(deflate_level) {
  int code = 0;
  archive_ = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (archive_ == nullptr) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string message = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw std::runtime_error("cannot create archive " + path + ": " + message);
  }
}

ZipWriter::~ZipWriter() {
  if (archive_ != nullptr) zip_discard(archive_);
  for (auto& s : sources_) zip_error_fini(&s->error);
}

void ZipWriter::Add(const std::string& name, std::unique_ptr<EntryProducer> producer) {
  auto source = std::make_unique<Source>();
  source->writer = this;
  source->producer = std::move(producer);
  source->stats.name = name;
  source->mtime = std::time(nullptr);
  zip_error_init(&source->error);
  zip_source_t* zs = zip_source_function(archive_, &Source::Callback, source.get());
  if (zs == nullptr) throw std::runtime_error("libzip: " + std::string(zip_strerror(archive_)));
  const zip_int64_t index = zip_file_add(archive_, name.c_str(), zs, ZIP_FL_ENC_UTF_8);
  if (index < 0) {
    zip_source_free(zs);
    throw std::runtime_error("libzip cannot add " + name + ": " + zip_strerror(archive_));
  }
  if (zip_set_file_compression(archive_, static_cast<zip_uint64_t>(index), ZIP_CM_DEFLATE,
                               static_cast<zip_uint32_t>(level_)) != 0) {
    throw std::runtime_error("libzip cannot set deflate level " + std::to_string(level_) + ": " +
                             zip_strerror(archive_));
  }
  sources_.push_back(std::move(source));
}

void ZipWriter::Close() {
  if (zip_close(archive_) != 0) {
    std::string message = zip_strerror(archive_);
    // archive_ is still open after a failed zip_close; the destructor discards it.
    if (error_) std::rethrow_exception(error_);
    throw std::runtime_error("cannot write the archive " + path_ + ": " + message);
  }
  archive_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

const EntryStats* ZipWriter::Find(const std::string& name) const {
  for (const auto& e : stats_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace labelloop::dl_manager
