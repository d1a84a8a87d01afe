// The live orders of all projects. Readers take a shared_ptr to the current Order and
// keep using it even if a new one is installed meanwhile (old or new, never a mixture).
// Labels submitted while a new order is being built are logged and replayed onto it
// before it goes live, so a labeled item never comes back.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "services/ranking/order.hpp"

namespace labelloop::ranking {

class Ranker {
 public:
  // The live order, or nullptr when the project has none yet.
  std::shared_ptr<const Order> Live(int64_t project_id) const;

  // Call before reading the labeled items for a new order; pass the result to Install.
  uint64_t BeginBuild(int64_t project_id);

  // Applies the drops logged since `since` to the new order and makes it live.
  void Install(int64_t project_id, std::shared_ptr<const Order> order, uint64_t since);

  // Drops a labeled item from the live order now (and from an order being built).
  // True when it was live.
  bool Drop(int64_t project_id, int64_t item_id);

  std::vector<int64_t> Projects() const;

 private:
  struct Project {
    std::mutex mu;  // orders installs against drops
    std::atomic<std::shared_ptr<const Order>> live;
    std::vector<std::pair<uint64_t, int64_t>> drop_log;  // (sequence, item)
    uint64_t next_seq = 0;
  };
  Project* Find(int64_t project_id) const;
  Project& Get(int64_t project_id);

  mutable std::shared_mutex mu_;
  std::map<int64_t, std::unique_ptr<Project>> projects_;
};

}  // namespace labelloop::ranking
