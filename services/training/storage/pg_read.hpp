// Reads the labeling service's published views (labeling.v_projects, labeling.v_items):
// the project's class list and the items' feature vectors and consensus labels, streamed
// through a server-side cursor in batches so memory stays bounded.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/training/trainer.hpp"

namespace labelloop::training::storage {

struct Project {
  int64_t id = 0;
  bool multi_label = false;
  std::vector<std::string> classes;
  nlohmann::json settings;
};

struct ItemBatch {
  std::vector<int64_t> item_ids;
  std::vector<std::vector<float>> features;
  std::vector<std::vector<std::string>> labels;  // consensus class names (labeled items)
};

// Parses PostgreSQL's text form of a real[] ("{1,2.5,-3e-2}"). False on a malformed value.
bool ParseRealArray(std::string_view text, std::vector<float>* out);

std::optional<Project> LoadProject(pg::Pool& pool, int64_t project_id);

// Labeled items per class name of the project (consensus labels), by one aggregate query.
std::vector<std::pair<std::string, int64_t>> LabelCounts(pg::Pool& pool, int64_t project_id);
int64_t LabeledCount(pg::Pool& pool, int64_t project_id);

// Streams the project's labeled (or unlabeled) items in item_id order, batch_rows at a time.
// fn returns false to stop early.
void StreamItems(pg::Pool& pool, int64_t project_id, bool labeled, int batch_rows,
                 const std::function<bool(const ItemBatch&)>& fn);

struct LoadResult {
  Dataset data;
  std::vector<int64_t> item_ids;
  std::string error;    // e.g. an item whose feature vector has another length
  int64_t skipped = 0;  // labeled items whose consensus names no class of the project
};
// The labeled items as a training set in the project's class order. should_stop is asked
// between batches.
LoadResult LoadLabeled(pg::Pool& pool, const Project& project,
                       const std::function<bool()>& should_stop);

}  // namespace labelloop::training::storage
