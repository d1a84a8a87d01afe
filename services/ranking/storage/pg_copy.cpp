#include "services/ranking/storage/pg_copy.hpp"

#include <arpa/inet.h>
#include <libpq-fe.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace labelloop::ranking::storage {
namespace {

constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // 11 bytes with the terminating NUL

inline uint32_t Be32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}
inline int16_t Be16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return static_cast<int16_t>(ntohs(v));
}

std::string ErrorOf(PGconn* c) {
  std::string e = PQerrorMessage(c);
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  return e;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

void Check(PGconn* c, PGresult* r, ExecStatusType want, const std::string& what) {
  if (PQresultStatus(r) != want) {
    std::string msg = r ? PQresultErrorMessage(r) : ErrorOf(c);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    throw std::runtime_error(what + ": " + msg);
  }
}

}  // namespace

Connection::Connection(const std::string& url) {
  conn_ = PQconnectdb(url.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string e = ErrorOf(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    throw std::runtime_error("cannot connect to PostgreSQL: " + e);
  }
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

void Connection::Exec(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  Result r(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0));
  const auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Check(conn_, r.get(), PGRES_COMMAND_OK, "query failed");
  }
}

void Connection::CopyOut(const std::string& copy_sql,
                         const std::function<void(std::span<const Field>)>& on_row) {
  Result start(PQexec(conn_, copy_sql.c_str()));
  Check(conn_, start.get(), PGRES_COPY_OUT, "COPY failed");
  // CopyData messages need not line up with rows: parse from a buffer that keeps the
  // unparsed tail of the previous message.
  std::string pending;
  bool header_done = false;
  std::vector<Field> fields;
  auto parse = [&](const char* data, size_t size) -> size_t {
    size_t off = 0;
    if (!header_done) {
      if (size < 19) return 0;
      if (std::memcmp(data, kSignature, 11) != 0) throw std::runtime_error("bad COPY header");
      const uint32_t ext = Be32(data + 15);
      if (size < 19 + ext) return 0;
      off = 19 + ext;
      header_done = true;
    }
    for (;;) {
      if (size - off < 2) return off;
      const int16_t count = Be16(data + off);
      if (count == -1) return size;  // trailer
      size_t p = off + 2;
      fields.resize(static_cast<size_t>(count));
      bool complete = true;
      for (int16_t i = 0; i < count; ++i) {
        if (size - p < 4) {
          complete = false;
          break;
        }
        const int32_t len = static_cast<int32_t>(Be32(data + p));
        p += 4;
        if (len > 0 && size - p < static_cast<size_t>(len)) {
          complete = false;
          break;
        }
        fields[i] = {data + p, len};
        if (len > 0) p += static_cast<size_t>(len);
      }
      if (!complete) return off;
      on_row(fields);
      off = p;
    }
  };
  std::exception_ptr failure;
  for (;;) {
    char* buf = nullptr;
    const int n = PQgetCopyData(conn_, &buf, 0);
    if (n == -1) break;
    if (n == -2) throw std::runtime_error("COPY failed: " + ErrorOf(conn_));
    if (!failure) {
      try {
        if (pending.empty()) {
          const size_t used = parse(buf, static_cast<size_t>(n));
          pending.assign(buf + used, static_cast<size_t>(n) - used);
        } else {
          pending.append(buf, static_cast<size_t>(n));
          const size_t used = parse(pending.data(), pending.size());
          pending.erase(0, used);
        }
      } catch (...) {
        failure = std::current_exception();  // keep draining so the connection stays usable
      }
    }
    PQfreemem(buf);
  }
  Result end(PQgetResult(conn_));
  Check(conn_, end.get(), PGRES_COMMAND_OK, "COPY failed");
  while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
  if (failure) std::rethrow_exception(failure);
}

void Connection::CopyIn(const std::string& copy_sql,
                        const std::function<bool(pg::binary::CopyEncoder&)>& produce) {
  Result start(PQexec(conn_, copy_sql.c_str()));
  Check(conn_, start.get(), PGRES_COPY_IN, "COPY failed");
  pg::binary::CopyEncoder encoder;
  bool more = true;
  while (more) {
    more = produce(encoder);
    if (!more) encoder.AppendTrailer();
    auto& b = encoder.buffer();
    if (!b.empty() && PQputCopyData(conn_, b.data(), static_cast<int>(b.size())) != 1) {
      throw std::runtime_error("COPY failed: " + ErrorOf(conn_));
    }
    b.clear();
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) throw std::runtime_error("COPY failed: " + ErrorOf(conn_));
  Result end(PQgetResult(conn_));
  Check(conn_, end.get(), PGRES_COMMAND_OK, "COPY failed");
  while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
}

}  // namespace labelloop::ranking::storage
