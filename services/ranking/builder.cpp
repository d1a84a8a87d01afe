#include "services/ranking/builder.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace labelloop::ranking {

Builder::Builder(storage::Store& store, Ranker& ranker, BuilderOptions options,
                 metrics::Registry& metrics)
    : store_(store),
      ranker_(ranker),
      options_(options),
      builds_(metrics.GetCounter("labelloop_ranking_builds_total", "orders built")),
      build_failures_(metrics.GetCounter("labelloop_ranking_build_failures_total",
                                         "order builds that failed (retried on the timer)")),
      rejected_(metrics.GetCounter("labelloop_ranking_rejected_predictions_total",
                                   "prediction rows skipped: NaN, out of [0, 1], sum != 1")),
      last_build_seconds_(metrics.GetGauge("labelloop_ranking_last_build_seconds",
                                           "load + score + sort time of the last order")) {}

Builder::~Builder() { Stop(); }

void Builder::Start() {
  {
    std::lock_guard lock(mu_);
    reconcile_ = true;
  }
  thread_ = std::thread([this] { Loop(); });
}

void Builder::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Builder::RequestRefresh(int64_t project_id) {
  {
    std::lock_guard lock(mu_);
    pending_.insert(project_id);
  }
  cv_.notify_all();
}

void Builder::RequestReconcile() {
  {
    std::lock_guard lock(mu_);
    reconcile_ = true;
  }
  cv_.notify_all();
}

void Builder::Loop() {
  auto next_reconcile = std::chrono::steady_clock::now();
  for (;;) {
    std::set<int64_t> projects;
    bool reconcile = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_reconcile,
                     [&] { return stop_ || reconcile_ || !pending_.empty(); });
      if (stop_) return;
      projects.swap(pending_);
      reconcile = reconcile_ || std::chrono::steady_clock::now() >= next_reconcile;
      reconcile_ = false;
    }
    for (int64_t p : projects) {
      try {
        Refresh(p);
      } catch (const std::exception& e) {
        build_failures_.Increment();
        spdlog::error("ranking: project {}: rebuild failed (retried on the timer): {}", p,
                      e.what());
      }
    }
    if (reconcile) {
      try {
        Reconcile();
      } catch (const std::exception& e) {
        spdlog::error("ranking: reconcile failed (retried on the timer): {}", e.what());
      }
      next_reconcile = std::chrono::steady_clock::now() + options_.reconcile_interval;
    }
  }
}

void Builder::Refresh(int64_t project_id) {
  std::lock_guard build_lock(build_mu_);
  auto model = store_.LatestReadyModel(project_id);
  if (!model) return;  // nothing to rank yet
  auto settings = store_.Settings(project_id);
  auto live = ranker_.Live(project_id);
  const bool same_scores = live && live->table().model().model_id == model->model_id &&
                           (!model->multi_label || live->table().aggregate() == settings.aggregate);
  if (same_scores) {
    if (live->strategy() != settings.strategy) {
      // Only the strategy changed: the scores stay, the order is re-sorted.
      const uint64_t since = ranker_.BeginBuild(project_id);
      auto order = std::make_shared<Order>(live->shared_table(), settings.strategy,
                                           std::chrono::system_clock::now(), 0.0);
      order->Ranked(settings.strategy);
      ranker_.Install(project_id, std::move(order), since);
      spdlog::info("ranking: project {}: strategy now {}", project_id,
                   StrategyName(settings.strategy));
    }
    return;
  }
  Build(*model, settings);
}

void Builder::Build(const ModelInfo& model, const storage::ProjectSettings& settings) {
  const int64_t project_id = model.project_id;
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t since = ranker_.BeginBuild(project_id);
  const bool first = ranker_.Live(project_id) == nullptr;
  std::shared_ptr<ScoreTable> table;
  bool from_saved = false;
  if (first) {
    // After a restart: reuse the persisted scores when they are of this model and settings.
    auto saved = store_.SavedOrderOf(project_id);
    if (saved && saved->model_id == model.model_id &&
        saved->random_seed == static_cast<int64_t>(options_.random_seed) &&
        (!model.multi_label || saved->aggregate == AggregateName(settings.aggregate))) {
      std::vector<int64_t> ids;
      std::vector<float> scores4;
      store_.LoadScores(project_id, model.model_id, ids, scores4);
      if (!ids.empty()) {
        auto labeled = store_.LabeledItems(project_id);
        table = TableFromScores(model, settings.aggregate, std::move(ids), std::move(scores4),
                                saved->rejected, std::move(labeled));
        from_saved = true;
      }
    }
  }
  auto phase = t0;
  std::string phases;
  auto lap = [&](const char* name) {
    const auto now = std::chrono::steady_clock::now();
    phases += fmt::format(" {} {:.0f} ms", name,
                          std::chrono::duration<double, std::milli>(now - phase).count());
    phase = now;
  };
  if (!table) {
    lap("settings");
    auto matrix =
        store_.LoadPredictions(model, options_.load_connections, options_.load_rows_per_connection);
    lap("load");
    auto labeled = store_.LabeledItems(project_id);
    lap("labeled");
    table = BuildTable(model, std::move(matrix), std::move(labeled),
                       {.strategy = settings.strategy,
                        .aggregate = settings.aggregate,
                        .random_seed = options_.random_seed,
                        .threads = options_.threads});
    if (table->rejected() > 0) {
      rejected_.Increment(static_cast<double>(table->rejected()));
      spdlog::warn(
          "ranking: project {} model {}: skipped {} prediction rows (NaN, outside [0, 1], "
          "or not summing to 1)",
          project_id, model.model_id, table->rejected());
    }
  }
  lap("score");
  auto order =
      std::make_shared<Order>(table, settings.strategy, std::chrono::system_clock::now(), 0.0);
  order->Ranked(settings.strategy);  // sorted before it goes live
  lap("sort");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  order->set_build_seconds(seconds);
  ranker_.Install(project_id, order, since);
  builds_.Increment();
  last_build_seconds_.Set(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  spdlog::info(
      "ranking: project {}: order live from model {} (v{}), {} items, strategy {}, {}"
      " in {:.3f} s:{}",
      project_id, model.model_id, model.version, table->size(), StrategyName(settings.strategy),
      from_saved ? "persisted scores" : "scored", seconds, phases);
  if (options_.persist_scores && !from_saved) {
    const auto t1 = std::chrono::steady_clock::now();
    store_.SaveScores(*table, static_cast<int64_t>(options_.random_seed));
    spdlog::info("ranking: project {}: {} scores persisted in {:.3f} s", project_id, table->size(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
  }
}

void Builder::CheckHead(int64_t project_id) {
  auto live = ranker_.Live(project_id);
  if (!live) return;
  std::vector<int64_t> ids;
  for (const auto& pick : live->Next(options_.head_check, live->strategy(), {})) {
    ids.push_back(pick.item_id);
  }
  for (int64_t id : store_.LabeledAmong(ids)) {
    if (ranker_.Drop(project_id, id)) {
      spdlog::info("ranking: project {}: item {} found labeled on reconcile", project_id, id);
    }
  }
}

void Builder::Reconcile() {
  for (const auto& model : store_.LatestReadyModels()) {
    try {
      Refresh(model.project_id);
      CheckHead(model.project_id);
    } catch (const std::exception& e) {
      build_failures_.Increment();
      spdlog::error("ranking: project {}: reconcile failed (retried on the timer): {}",
                    model.project_id, e.what());
    }
  }
}

}  // namespace labelloop::ranking
