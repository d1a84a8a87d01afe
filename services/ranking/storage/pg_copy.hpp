// Bulk reads and writes in PostgreSQL's binary COPY format over a libpq connection of
// its own (libpqxx 6.4 only streams COPY as text, and parsing real[] from text costs
// more than the rest of a rebuild).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;

namespace labelloop::ranking::storage {

// One field of a binary COPY row (null when len < 0).
struct Field {
  const char* data = nullptr;
  int32_t len = -1;
};

// A real[] (float4[]) in binary array format, decoded; false when it is not a
// one-dimensional float4 array without NULLs.
bool DecodeFloatArray(Field f, std::vector<float>& out);
// Appends the values of a one-dimensional float4 array to `out`; returns how many, or -1.
int AppendFloatArray(Field f, std::vector<float>& out);
int64_t DecodeInt64(Field f);

// Encoders for COPY FROM (FORMAT binary).
class BinaryRowWriter {
 public:
  BinaryRowWriter();
  void BeginRow(int16_t fields);
  void Int64(int64_t v);
  void Text(std::string_view v);  // also bytea: raw bytes
  void Int32(int32_t v);
  void FloatArray(std::span<const float> values);
  std::string& buffer() { return buf_; }
  void Finish();  // the trailer

 private:
  std::string buf_;
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
  // Runs COPY ... FROM STDIN (FORMAT binary); produce(writer) fills the writer and
  // returns false when done (the buffer is sent after each call).
  void CopyIn(const std::string& copy_sql, const std::function<bool(BinaryRowWriter&)>& produce);

 private:
  pg_conn* conn_ = nullptr;
};

}  // namespace labelloop::ranking::storage
