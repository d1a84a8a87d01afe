// Builds the archive of one (project, model) from the published views
// labeling.v_projects / v_items / v_labels and training.v_models / v_prediction_chunks,
// inside one read-only REPEATABLE READ transaction so every file describes the same
// moment. Plain columns come out of PostgreSQL through binary server-side cursors, a
// batch at a time (labels and predictions merged with the items in item order), are
// formatted into JSON records on a producer thread and deflated by libzip on the
// calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <vector>

#include "services/dl_manager/archive/zip_writer.hpp"

namespace labelloop::dl_manager {

// The project or model does not exist (or the model is not the project's): a
// permanent failure, never retried.
class ExportNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// The data cannot be exported as it is (bad model JSON, wrong feature length):
// permanent as well.
class ExportInvalid : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// The build was asked to stop (drain, or the lease was lost).
class ExportAborted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Shared with the lease/progress thread while a build runs.
struct BuildProgress {
  std::atomic<int64_t> rows{0};
  std::atomic<bool> abort{false};
  void SetPhase(const std::string& phase) {
    std::lock_guard lock(mu);
    this->phase = phase;
  }
  std::string Phase() const {
    std::lock_guard lock(mu);
    return phase;
  }

 private:
  mutable std::mutex mu;
  std::string phase;
};

struct ExportOptions {
  int64_t download_id = 0;
  int64_t project_id = 0;
  int64_t model_id = 0;
  int deflate_level = 1;
  int batch_rows = 5000;
  int64_t statement_timeout_ms = 600000;
};

struct ExportResult {
  std::vector<EntryStats> entries;
  nlohmann::json manifest;
  nlohmann::json entry_counts;  // {"human_labels.json": n, ...}
};

// Writes the archive to `path`. Throws ExportNotFound / ExportInvalid / ExportAborted,
// pqxx errors or std::runtime_error.
ExportResult BuildArchive(pqxx::connection& conn, const ExportOptions& options,
                          const std::string& path, BuildProgress* progress);

}  // namespace labelloop::dl_manager
