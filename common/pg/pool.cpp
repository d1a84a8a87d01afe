#include "common/pg/pool.hpp"

#include <spdlog/spdlog.h>

namespace labelloop::pg {

Pool::Pool(PoolOptions options) : options_(std::move(options)) {
  if (options_.size < 1) throw std::invalid_argument("pool size must be at least 1");
  slots_.resize(static_cast<size_t>(options_.size));
}

void Pool::Prepare(const std::string& name, const std::string& sql) {
  std::lock_guard lock(mu_);
  prepared_.emplace_back(name, sql);
  // Connections already open learn the statement now; busy ones are reopened lazily
  // only if they break, so register statements before serving.
  for (auto& slot : slots_) {
    if (slot.conn && !slot.busy) slot.conn->prepare(name, sql);
  }
}

std::unique_ptr<pqxx::connection> Pool::Open() {
  auto conn = std::make_unique<pqxx::connection>(options_.url);
  pqxx::nontransaction tx(*conn);
  tx.exec("SET statement_timeout = " + std::to_string(options_.statement_timeout_ms));
  tx.exec("SET application_name = " + tx.quote(options_.application_name));
  std::vector<std::pair<std::string, std::string>> prepared;
  {
    std::lock_guard lock(mu_);
    prepared = prepared_;
  }
  for (const auto& [name, sql] : prepared) conn->prepare(name, sql);
  return conn;
}

Pool::Lease Pool::Acquire() {
  size_t index = 0;
  {
    std::unique_lock lock(mu_);
    auto free_slot = [&] {
      for (size_t i = 0; i < slots_.size(); ++i) {
        if (!slots_[i].busy) {
          index = i;
          return true;
        }
      }
      return false;
    };
    if (!cv_.wait_for(lock, std::chrono::milliseconds(options_.acquire_timeout_ms), free_slot)) {
      throw PoolExhausted("no PostgreSQL connection free within " +
                          std::to_string(options_.acquire_timeout_ms) + " ms (pool size " +
                          std::to_string(slots_.size()) + ")");
    }
    slots_[index].busy = true;
  }
  Lease lease(this, index);
  Slot& slot = slots_[index];
  if (!slot.conn || !slot.conn->is_open()) {
    slot.conn.reset();
    slot.conn = Open();  // throws broken_connection; the lease hands the slot back
  }
  return lease;
}

pqxx::connection& Pool::Lease::operator*() const { return *pool_->slots_[slot_].conn; }

Pool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Release(slot_, false);
}

void Pool::Lease::Discard() {
  if (pool_ != nullptr) std::exchange(pool_, nullptr)->Release(slot_, true);
}

void Pool::Release(size_t slot, bool discard) {
  {
    std::lock_guard lock(mu_);
    if (discard) slots_[slot].conn.reset();
    slots_[slot].busy = false;
  }
  cv_.notify_one();
}

bool Pool::Ping() {
  try {
    return Run([](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return tx.exec("SELECT 1")[0][0].as<int>() == 1;
    });
  } catch (const std::exception& e) {
    spdlog::debug("PostgreSQL ping failed: {}", e.what());
    return false;
  }
}

int Pool::in_use() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& s : slots_) n += s.busy ? 1 : 0;
  return n;
}

int Pool::open_connections() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& s : slots_) n += s.conn ? 1 : 0;
  return n;
}

}  // namespace labelloop::pg
