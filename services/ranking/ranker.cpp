#include "services/ranking/ranker.hpp"

#include <algorithm>

namespace labelloop::ranking {

Ranker::Project* Ranker::Find(int64_t project_id) const {
  std::shared_lock lock(mu_);
  auto it = projects_.find(project_id);
  return it == projects_.end() ? nullptr : it->second.get();
}

Ranker::Project& Ranker::Get(int64_t project_id) {
  if (auto* p = Find(project_id)) return *p;
  std::unique_lock lock(mu_);
  auto& slot = projects_[project_id];
  if (!slot) slot = std::make_unique<Project>();
  return *slot;
}

std::shared_ptr<const Order> Ranker::Live(int64_t project_id) const {
  auto* p = Find(project_id);
  return p ? p->live.load() : nullptr;
}

uint64_t Ranker::BeginBuild(int64_t project_id) {
  auto& p = Get(project_id);
  std::lock_guard lock(p.mu);
  return p.next_seq;
}

void Ranker::Install(int64_t project_id, std::shared_ptr<const Order> order, uint64_t since) {
  auto& p = Get(project_id);
  std::lock_guard lock(p.mu);
  // Drops before `since` were committed before the build read the labeled items.
  std::erase_if(p.drop_log, [&](const auto& e) { return e.first < since; });
  for (const auto& [seq, item] : p.drop_log) order->mutable_table().Drop(item);
  p.live.store(std::move(order));
}

bool Ranker::Drop(int64_t project_id, int64_t item_id) {
  auto* p = Find(project_id);
  if (!p) return false;  // no order yet: the first build reads the label from PostgreSQL
  std::lock_guard lock(p->mu);
  p->drop_log.emplace_back(p->next_seq++, item_id);
  auto live = p->live.load();
  return live && live->mutable_table().Drop(item_id);
}

std::vector<int64_t> Ranker::Projects() const {
  std::shared_lock lock(mu_);
  std::vector<int64_t> out;
  for (const auto& [id, p] : projects_) out.push_back(id);
  return out;
}

}  // namespace labelloop::ranking
