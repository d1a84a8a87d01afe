#include "services/labeling/ingest/copy_writer.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace labelloop::labeling::ingest {
namespace {

// libpqxx 6.4 keeps the PGconn private; largeobject hands it to subclasses, which is
// the supported way to run libpq calls (here: COPY) on a transaction's connection.
class RawConnection : public pqxx::largeobject {
 public:
  static PGconn* Of(const pqxx::dbtransaction& tx) { return raw_connection(tx); }
};

constexpr int64_t kPgEpochOffsetMicros = 946684800LL * 1000000;  // 2000-01-01 - 1970-01-01
constexpr int32_t kFloat4Oid = 700;
constexpr int32_t kTextOid = 25;

}  // namespace

CopyEncoder::CopyEncoder() {
  buf_.reserve(1 << 20);
  static constexpr char kSignature[] = "PGCOPY\n\377\r\n\0";
  buf_.append(kSignature, 11);
  Put32(0);  // flags
  Put32(0);  // header extension length
}

void CopyEncoder::Put16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  const char b[2] = {static_cast<char>(u >> 8), static_cast<char>(u)};
  buf_.append(b, 2);
}

void CopyEncoder::Put32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  const char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16),
                     static_cast<char>(u >> 8), static_cast<char>(u)};
  buf_.append(b, 4);
}

void CopyEncoder::Put64(int64_t v) {
  Put32(static_cast<int32_t>(static_cast<uint64_t>(v) >> 32));
  Put32(static_cast<int32_t>(static_cast<uint64_t>(v) & 0xFFFFFFFFU));
}

void CopyEncoder::BeginTuple(int16_t fields) { Put16(fields); }
void CopyEncoder::Null() { Put32(-1); }

void CopyEncoder::Text(std::string_view s) {
  Put32(static_cast<int32_t>(s.size()));
  buf_.append(s);
}

void CopyEncoder::Jsonb(std::string_view json) {
  Put32(static_cast<int32_t>(json.size() + 1));
  buf_.push_back('\x01');  // jsonb binary format version
  buf_.append(json);
}

void CopyEncoder::Int64(int64_t v) {
  Put32(8);
  Put64(v);
}

void CopyEncoder::TimestampMicros(int64_t unix_micros) {
  Put32(8);
  Put64(unix_micros - kPgEpochOffsetMicros);
}

void CopyEncoder::FloatArray(std::span<const float> values) {
  const size_t n = values.size();
  if (n == 0) {
    Put32(12);
    Put32(0);  // ndim
    Put32(0);  // no nulls
    Put32(kFloat4Oid);
    return;
  }
  Put32(static_cast<int32_t>(20 + n * 8));
  Put32(1);  // ndim
  Put32(0);  // no nulls
  Put32(kFloat4Oid);
  Put32(static_cast<int32_t>(n));
  Put32(1);  // lower bound
  const size_t at = buf_.size();
  buf_.resize(at + n * 8);
  char* p = buf_.data() + at;
  for (float f : values) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    p[0] = 0;
    p[1] = 0;
    p[2] = 0;
    p[3] = 4;
    p[4] = static_cast<char>(u >> 24);
    p[5] = static_cast<char>(u >> 16);
    p[6] = static_cast<char>(u >> 8);
    p[7] = static_cast<char>(u);
    p += 8;
  }
}

void CopyEncoder::TextArray(std::span<const std::string_view> values) {
  size_t len = values.empty() ? 12 : 20;
  for (auto v : values) len += 4 + v.size();
  Put32(static_cast<int32_t>(len));
  Put32(values.empty() ? 0 : 1);
  Put32(0);
  Put32(kTextOid);
  if (values.empty()) return;
  Put32(static_cast<int32_t>(values.size()));
  Put32(1);
  for (auto v : values) Text(v);
}

void CopyEncoder::AppendTrailer() { Put16(-1); }

namespace {

void StartCopy(PGconn* conn, const std::string& target) {
  const std::string sql = "COPY " + target + " FROM STDIN WITH (FORMAT binary)";
  PGresult* r = PQexec(conn, sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COPY_IN;
  std::string err = ok ? "" : PQerrorMessage(conn);
  const char* state = ok ? nullptr : PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string sqlstate = state == nullptr ? "" : state;
  PQclear(r);
  if (!ok) throw CopyError("COPY could not start: " + err, std::move(sqlstate));
}

// Sends the data on: libpq would keep the last few kB in its own buffer until more comes.
void PutCopyData(PGconn* conn, std::string_view data) {
  if (PQputCopyData(conn, data.data(), static_cast<int>(data.size())) != 1 || PQflush(conn) != 0) {
    throw CopyError(std::string("COPY failed: ") + PQerrorMessage(conn), "");
  }
}

// Sends the end of the data and collects the outcome.
int64_t EndCopy(PGconn* conn) {
  if (PQputCopyEnd(conn, nullptr) != 1) {
    throw CopyError(std::string("COPY failed: ") + PQerrorMessage(conn), "");
  }
  int64_t rows = 0;
  std::string err, sqlstate;
  while (PGresult* r = PQgetResult(conn)) {
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
      rows = std::strtoll(PQcmdTuples(r), nullptr, 10);
    } else if (err.empty()) {
      err = PQresultErrorMessage(r);
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      sqlstate = state == nullptr ? "" : state;
    }
    PQclear(r);
  }
  if (!err.empty()) throw CopyError("COPY failed: " + err, std::move(sqlstate));
  return rows;
}

}  // namespace

CopyStream::CopyStream(pqxx::dbtransaction& tx, const std::string& target, size_t flush_bytes,
                       int tee_fd)
    : conn_(RawConnection::Of(tx)), flush_bytes_(flush_bytes), tee_fd_(tee_fd) {
  StartCopy(static_cast<PGconn*>(conn_), target);
  active_ = true;
}

CopyStream::~CopyStream() {
  if (active_) Abort("abandoned");
}

void CopyStream::Flush() {
  std::string& b = encoder_.buffer();
  if (b.empty()) return;
  if (tee_fd_ >= 0) {
    std::string_view rest = b;
    while (!rest.empty()) {
      const ssize_t n = write(tee_fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        throw std::runtime_error(std::string("cannot spool COPY data: ") + strerror(errno));
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }
  PutCopyData(static_cast<PGconn*>(conn_), b);
  b.clear();
}

int64_t CopyStream::End() {
  encoder_.AppendTrailer();
  Flush();
  active_ = false;
  return EndCopy(static_cast<PGconn*>(conn_));
}

int64_t CopyStream::Replay(pqxx::dbtransaction& tx, const std::string& target, int fd) {
  PGconn* conn = RawConnection::Of(tx);
  if (lseek(fd, 0, SEEK_SET) != 0) {
    throw std::runtime_error(std::string("cannot rewind the COPY spool: ") + strerror(errno));
  }
  StartCopy(conn, target);
  std::string buf(size_t{1} << 20, '\0');
  for (;;) {
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = std::string("cannot read the COPY spool: ") + strerror(errno);
      PQputCopyEnd(conn, why.c_str());
      while (PGresult* r = PQgetResult(conn)) PQclear(r);
      throw std::runtime_error(why);
    }
    if (n == 0) break;
    PutCopyData(conn, std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  return EndCopy(conn);
}

void CopyStream::Abort(const std::string& why) {
  if (!active_) return;
  active_ = false;
  auto* conn = static_cast<PGconn*>(conn_);
  PQputCopyEnd(conn, why.c_str());
  while (PGresult* r = PQgetResult(conn)) PQclear(r);
}

}  // namespace labelloop::labeling::ingest
