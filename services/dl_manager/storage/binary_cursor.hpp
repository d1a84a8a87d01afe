// Server-side cursors read in PostgreSQL's binary format, a batch per FETCH, straight
// through libpq (pqxx 6 cannot ask for binary results), on the connection and inside the
// transaction of a pqxx transaction: plain columns cost the backend almost nothing to
// send, and the client formats them (see common/pg/binary_format.hpp and archive/pg_binary.hpp).
//
// Several cursors share one connection (an export merges items with their labels in
// item order). Each cursor asks for its next batch as soon as it has received one, so
// PostgreSQL produces batch n+1 while the client formats batch n; only one FETCH is in
// flight per connection, and a cursor that needs a batch while another cursor's FETCH is
// in flight first collects that result for its owner.
//
//   CursorSession session(tx);
//   BinaryCursor items(session, "ll_items", "SELECT ... WHERE project_id = $1", {"7"}, 5000);
//   while (items.Next()) use(items.Field(0), items.IsNull(1), ...);
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

namespace labelloop::dl_manager {

class BinaryCursor;

class CursorSession {
 public:
  // tx must stay open, and must not be used, while cursors of this session are read.
  explicit CursorSession(const pqxx::dbtransaction& tx);
  // Collects a FETCH still in flight so that the transaction can be used again.
  ~CursorSession();
  CursorSession(const CursorSession&) = delete;
  CursorSession& operator=(const CursorSession&) = delete;

  // Waits for a FETCH in flight (keeping its result for its cursor), so that the
  // transaction can run a query of its own between two rows of the cursors.
  void Quiesce() {
    if (inflight_ != nullptr) Collect();
  }

 private:
  friend class BinaryCursor;
  using Result = std::unique_ptr<PGresult, void (*)(PGresult*)>;
  // Runs sql with text parameters and waits; the result must be PGRES_COMMAND_OK.
  void Command(const std::string& sql, const std::vector<std::string>& params);
  // Sends c's FETCH (collecting any other FETCH in flight first).
  void Send(BinaryCursor* c);
  // Waits for the FETCH in flight and hands its result to its cursor.
  void Collect();
  // Reads what has arrived without waiting, so the server is not blocked on a full socket.
  void Poll();
  Result Wait(bool expect_tuples);
  [[noreturn]] void Fail(const std::string& what, const PGresult* result);

  PGconn* conn_;
  BinaryCursor* inflight_ = nullptr;
};

class BinaryCursor {
 public:
  // DECLAREs the cursor (NO SCROLL) for query with text parameters $1, $2, ...
  BinaryCursor(CursorSession& session, std::string name, const std::string& query,
               const std::vector<std::string>& params, int batch_rows);
  BinaryCursor(const BinaryCursor&) = delete;
  BinaryCursor& operator=(const BinaryCursor&) = delete;

  // Advances to the next row; false after the last one.
  bool Next();
  bool IsNull(int column) const { return PQgetisnull(current_.get(), row_, column) != 0; }
  std::string_view Field(int column) const {
    return {PQgetvalue(current_.get(), row_, column),
            static_cast<size_t>(PQgetlength(current_.get(), row_, column))};
  }

 private:
  friend class CursorSession;
  CursorSession& session_;
  std::string fetch_;
  int batch_rows_;
  CursorSession::Result current_;
  CursorSession::Result pending_;
  int rows_ = 0;
  int row_ = -1;
  bool last_batch_ = false;
};

}  // namespace labelloop::dl_manager
