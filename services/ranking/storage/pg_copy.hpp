// Bulk reads and writes in PostgreSQL's binary COPY format over a libpq connection of
// its own (libpqxx 6.4 only streams COPY as text, and parsing real[] from text costs
// more than the rest of a rebuild). The values are encoded and decoded by
// common/pg/binary_format.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg/binary_format.hpp"

struct pg_conn;

namespace labelloop::ranking::storage {

// One field of a binary COPY row (decode it with common/pg/binary_format).
struct Field {
  const char* data = nullptr;
  int32_t len = -1;  // -1: NULL
  // The field's bytes (none for NULL).
  std::string_view bytes() const {
    return len < 0 ? std::string_view() : std::string_view(data, static_cast<size_t>(len));
  }
};

class Connection {
 public:
  explicit Connection(const std::string& url);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a statement with text parameters; throws std::runtime_error on failure.
  void Exec(const std::string& sql, const std::vector<std::string>& params = {});
  // Runs COPY ... TO STDOUT (FORMAT binary) and calls on_row for every row.
  void CopyOut(const std::string& copy_sql,
               const std::function<void(std::span<const Field>)>& on_row);
  // Runs COPY ... FROM STDIN (FORMAT binary); produce(encoder) encodes rows and returns
  // false when done (the buffer is sent after each call).
  void CopyIn(const std::string& copy_sql,
              const std::function<bool(pg::binary::CopyEncoder&)>& produce);

 private:
  pg_conn* conn_ = nullptr;
};

}  // namespace labelloop::ranking::storage
