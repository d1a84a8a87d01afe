// Binary COPY (PostgreSQL's COPY ... FROM STDIN WITH (FORMAT binary)) written straight to
// libpq from large buffers (encoded by common/pg/binary_format's CopyEncoder) and sent
// when the buffer reaches its threshold. Used inside a pqxx transaction.
#pragma once

#include <cstdint>
#include <pqxx/pqxx>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg/binary_format.hpp"

namespace labelloop::labeling::ingest {

// A COPY the server refused; sqlstate is the SQLSTATE of its error ("23505": a unique
// violation).
class CopyError : public std::runtime_error {
 public:
  CopyError(const std::string& what, std::string sqlstate)
      : std::runtime_error(what), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// A binary COPY running on the connection of `tx`.
class CopyStream {
 public:
  // Starts `COPY <target> FROM STDIN WITH (FORMAT binary)`; throws CopyError. With a
  // tee file descriptor, every byte sent is also written there, so that the same data
  // can be copied again later (Replay).
  CopyStream(pqxx::dbtransaction& tx, const std::string& target, size_t flush_bytes,
             int tee_fd = -1);
  ~CopyStream();
  // Copies the binary COPY data in the file `fd` (from its start: a whole stream as a
  // tee wrote it) into `target`; returns the rows copied; throws CopyError.
  static int64_t Replay(pqxx::dbtransaction& tx, const std::string& target, int fd);
  pg::binary::CopyEncoder& encoder() { return encoder_; }
  // Sends the buffer when it is over the threshold; throws std::runtime_error.
  void MaybeFlush() {
    if (encoder_.buffer().size() >= flush_bytes_) Flush();
  }
  void Flush();
  // Ends the COPY; returns the rows copied; throws CopyError with the server's message.
  int64_t End();
  // Abandons the COPY (the transaction is then rolled back by its owner).
  void Abort(const std::string& why);

 private:
  void* conn_;  // PGconn*
  pg::binary::CopyEncoder encoder_;
  size_t flush_bytes_;
  int tee_fd_;
  bool active_ = false;
};

}  // namespace labelloop::labeling::ingest
