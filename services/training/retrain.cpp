#include "services/training/retrain.hpp"

#include <spdlog/spdlog.h>

#include "common/bus/channels.hpp"
#include "services/training/storage/pg_read.hpp"

namespace labelloop::training {

StartResult StartJob(storage::Store& store, redis::Client& redis, const JobRules& rules,
                     int64_t project_id, const PartialSpec& partial, const std::string& trigger) {
  StartResult out;
  auto resolved = ResolveSpec(partial);
  if (!resolved.ok()) {
    out.code = StartResult::Code::kInvalidSpec;
    out.message = resolved.error;
    return out;
  }
  out.spec = resolved.spec;
  auto project = storage::LoadProject(store.pool(), project_id);
  if (!project) {
    out.code = StartResult::Code::kNoProject;
    out.message = "project " + std::to_string(project_id) + " does not exist";
    return out;
  }
  // The same rule the worker applies, answered now from one aggregate query.
  const auto per_class = storage::LabelCounts(store.pool(), project_id);
  std::string why;
  {
    int usable = 0;
    std::string summary;
    for (const auto& name : project->classes) {
      int64_t n = 0;
      for (const auto& [label, count] : per_class) {
        if (label == name) n = count;
      }
      usable += n >= rules.min_labels_per_class;
      summary += (summary.empty() ? "" : ", ") + name + "=" + std::to_string(n);
    }
    if (usable < 2) {
      why =
          "too few labels to train: need at least 2 classes with at least " +
          std::to_string(rules.min_labels_per_class) +
          " labeled items each (labeled items per class: " + (summary.empty() ? "none" : summary) +
          ")";
    }
  }
  if (!why.empty()) {
    out.code = StartResult::Code::kTooFewLabels;
    out.message = why;
    return out;
  }
  const int64_t labeled = storage::LabeledCount(store.pool(), project_id);
  int64_t live = 0;
  auto id = store.CreateJob(project_id, SpecToJson(out.spec), out.spec.epochs, rules.max_attempts,
                            trigger, labeled, &live);
  if (!id) {
    out.code = StartResult::Code::kAlreadyLive;
    out.job_id = live;
    out.message = "project " + std::to_string(project_id) + " already has a live training job (" +
                  std::to_string(live) + "); cancel it or wait for it to finish";
    return out;
  }
  out.job_id = *id;
  redis.Publish(
      bus::kTrainingJobs,
      nlohmann::json(
          {{"type", "training.job"}, {"version", 1}, {"job_id", *id}, {"project_id", project_id}})
          .dump());
  return out;
}

Retrainer::Retrainer(storage::Store& store, redis::Client& redis, JobRules rules, int reconcile_ms)
    : store_(store), redis_(redis), rules_(rules), reconcile_ms_(reconcile_ms) {}

Retrainer::~Retrainer() { Stop(); }

void Retrainer::Start() {
  thread_ = std::thread([this] {
    while (!stop_) {
      Reconcile();
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(reconcile_ms_), [this] { return stop_.load(); });
    }
  });
}

void Retrainer::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Retrainer::OnLabelsSubmitted(const std::string& payload) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("project_id") ||
      !j["project_id"].is_number_integer()) {
    spdlog::warn("ignoring a malformed {} message", bus::kLabelsSubmitted);
    return;
  }
  Reconcile(j["project_id"].get<int64_t>());
}

void Retrainer::Reconcile(std::optional<int64_t> project_id) {
  if (stop_) return;
  try {
    for (const auto& due : store_.DueProjects(project_id)) {
      std::string error;
      auto partial = PartialFromJson(due.spec, &error);
      if (!error.empty()) {
        spdlog::warn("project {}: retrain policy spec is invalid: {}", due.project_id, error);
        continue;
      }
      auto r = StartJob(store_, redis_, rules_, due.project_id, partial, "auto");
      if (r.code == StartResult::Code::kOk) {
        spdlog::info("project {}: {} labels, automatic training job {} started", due.project_id,
                     due.labeled, r.job_id);
      } else if (r.code != StartResult::Code::kAlreadyLive) {
        spdlog::debug("project {}: automatic job not started: {}", due.project_id, r.message);
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("auto-retraining reconcile failed: {}", e.what());
  }
}

}  // namespace labelloop::training
