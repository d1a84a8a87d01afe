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
