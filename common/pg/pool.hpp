// A fixed-size pool of libpqxx connections. Connections are opened lazily, get a
// statement timeout and the pool's prepared statements, and are replaced when they
// break, so a PostgreSQL restart needs no process restart.
//
//   pg::Pool pool({.url = "postgresql://...", .size = 8});
//   pool.Prepare("get_item", "SELECT ... WHERE id = $1");
//   auto rows = pool.Run([&](pqxx::connection& c) {
//     pqxx::work tx(c);
//     auto r = tx.exec_prepared("get_item", id);
//     tx.commit();
//     return r;
//   });
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace labelloop::pg {

struct PoolOptions {
  std::string url;
  int size = 8;
  int statement_timeout_ms = 30000;
  int acquire_timeout_ms = 5000;
  std::string application_name = "labelloop";
};

// Thrown when no connection frees up within acquire_timeout_ms.
class PoolExhausted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Pool {
 public:
  explicit Pool(PoolOptions options);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Registers a prepared statement on every connection, present and future.
  void Prepare(const std::string& name, const std::string& sql);

  // A borrowed connection; returned to the pool on destruction.
  class Lease {
   public:
    Lease(Pool* pool, size_t slot) : pool_(pool), slot_(slot) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), slot_(other.slot_) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    pqxx::connection& operator*() const;
    pqxx::connection* operator->() const { return &**this; }
    // Drops the connection instead of returning it (it is known to be broken).
    void Discard();

   private:
    Pool* pool_;
    size_t slot_;
  };

  // Borrows a connection, opening or reopening it when needed. Throws PoolExhausted
  // or pqxx::broken_connection when PostgreSQL cannot be reached.
  Lease Acquire();

  // Runs fn(connection). When the connection turns out to be broken (the server
  // restarted since it was last used) fn is retried once on a fresh connection:
  // a broken connection means fn's transaction did not commit.
  template <typename Fn>
  auto Run(Fn&& fn) -> decltype(fn(std::declval<pqxx::connection&>())) {
    for (int attempt = 0;; ++attempt) {
      Lease lease = Acquire();
      try {
        return fn(*lease);
      } catch (const pqxx::broken_connection&) {
        lease.Discard();
        if (attempt >= 1) throw;
      }
    }
  }

  // True when a connection answers SELECT 1 right now.
  bool Ping();

  int size() const { return static_cast<int>(slots_.size()); }
  int in_use() const;
  int open_connections() const;
  const PoolOptions& options() const { return options_; }

 private:
  struct Slot {
    std::unique_ptr<pqxx::connection> conn;
    bool busy = false;
  };
  void Release(size_t slot, bool discard);
  std::unique_ptr<pqxx::connection> Open();

  PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_;
  std::vector<std::pair<std::string, std::string>> prepared_;
};

}  // namespace labelloop::pg
