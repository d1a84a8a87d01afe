#include "services/dl_manager/storage/binary_cursor.hpp"

namespace labelloop::dl_manager {
namespace {

// pqxx::largeobject exposes the libpq connection of a transaction to its subclasses.
struct RawConnection : pqxx::largeobject {
  static PGconn* Of(const pqxx::dbtransaction& tx) { return raw_connection(tx); }
};

void Clear(PGresult* r) { PQclear(r); }

}  // namespace

CursorSession::CursorSession(const pqxx::dbtransaction& tx) : conn_(RawConnection::Of(tx)) {}

CursorSession::~CursorSession() {
  // Never throws: drop whatever is still coming so the connection is idle again.
  if (inflight_ != nullptr) {
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
    inflight_ = nullptr;
  }
}

void CursorSession::Fail(const std::string& what, const PGresult* result) {
  std::string message =
      what + ": " + (result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (PQstatus(conn_) == CONNECTION_BAD) throw pqxx::broken_connection(message);
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  throw pqxx::sql_error(message, what, state);
}

CursorSession::Result CursorSession::Wait(bool expect_tuples) {
  Result result(nullptr, Clear);
  // A query may return several results; the last one that is not NULL counts.
  while (PGresult* r = PQgetResult(conn_)) result.reset(r);
  const ExecStatusType want = expect_tuples ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
  if (!result || PQresultStatus(result.get()) != want) {
    Fail(expect_tuples ? "reading a cursor" : "declaring a cursor", result.get());
  }
  return result;
}

void CursorSession::Command(const std::string& sql, const std::vector<std::string>& params) {
  if (inflight_ != nullptr) Collect();
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  if (PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0) == 0) {
    Fail("declaring a cursor", nullptr);
  }
  Wait(false);
}

void CursorSession::Send(BinaryCursor* c) {
  if (inflight_ != nullptr) Collect();
  // Binary results (the last argument): the backend sends fields as they are stored.
  if (PQsendQueryParams(conn_, c->fetch_.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 1) == 0) {
    Fail("reading a cursor", nullptr);
  }
  inflight_ = c;
}

void CursorSession::Collect() {
  BinaryCursor* c = inflight_;
  inflight_ = nullptr;
  c->pending_ = Wait(true);
}

void CursorSession::Poll() {
  if (inflight_ != nullptr && PQconsumeInput(conn_) == 0) Fail("reading a cursor", nullptr);
}

BinaryCursor::BinaryCursor(CursorSession& session, std::string name, const std::string& query,
                           const std::vector<std::string>& params, int batch_rows)
    : session_(session),
      fetch_("FETCH FORWARD " + std::to_string(batch_rows) + " FROM " + name),
      batch_rows_(batch_rows),
      current_(nullptr, Clear),
      pending_(nullptr, Clear) {
  session_.Command("DECLARE " + name + " NO SCROLL CURSOR FOR " + query, params);
}

bool BinaryCursor::Next() {
  if (++row_ < rows_) {
    // Drain the socket now and then while a prefetch is under way.
    if ((row_ & 511) == 0) session_.Poll();
    return true;
  }
  if (last_batch_) return false;
  if (!pending_) {
    if (session_.inflight_ != this) session_.Send(this);
    session_.Collect();
  }
  current_ = std::move(pending_);
  rows_ = PQntuples(current_.get());
  row_ = 0;
  // A short batch is the last one; otherwise ask for the next now (prefetch).
  if (rows_ < batch_rows_) {
    last_batch_ = true;
  } else if (session_.inflight_ == nullptr) {
    session_.Send(this);
  }
  return rows_ > 0;
}

}  // namespace labelloop::dl_manager
