// Projects and their label schemas in PostgreSQL (labeling.projects).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/labeling/domain/outcome.hpp"
#include "services/labeling/domain/schema.hpp"

namespace labelloop::labeling::storage {

struct ProjectRecord {
  int64_t id = 0;
  std::string name;
  std::string instructions;
  std::string data_kind;
  LabelSchema schema;
  int judgements_per_item = 1;
  std::string validators_json;
  std::string settings_json;
  std::string status;
  std::string created_by;
  int64_t created_at_us = 0;
  int64_t updated_at_us = 0;
  int feature_dim = 0;
};

struct NewProject {
  std::string name;
  std::string instructions;
  std::string data_kind;
  LabelSchema schema;
  int judgements_per_item = 1;
  std::string validators_json = "{}";
  std::string settings_json = "{}";
  std::string created_by;
};

// Unset fields stay as they are.
struct ProjectChange {
  std::optional<std::string> name;
  std::optional<std::string> instructions;
  std::optional<LabelSchema> schema;
  std::optional<int> judgements_per_item;
  std::optional<std::string> validators_json;
  std::optional<std::string> settings_json;
};

// Advisory-lock key guarding a project's class list: SubmitLabel holds it shared while
// it validates and writes a label, UpdateProject exclusively while it counts the labels
// that use a class it drops, so no label with a dropped class can slip in between.
inline constexpr int64_t kClassLockBase = int64_t{1} << 52;

class ProjectStore {
 public:
  explicit ProjectStore(pg::Pool& pool) : pool_(pool) {}

  Outcome<ProjectRecord> Create(const NewProject& project);
  Outcome<ProjectRecord> Get(int64_t project_id);
  // Projects with id > after_id, in id order.
  Outcome<std::vector<ProjectRecord>> List(int64_t after_id, int limit, bool include_archived);
  Outcome<ProjectRecord> Update(int64_t project_id, const ProjectChange& change);
  Outcome<ProjectRecord> Archive(int64_t project_id);
  // Refused with the number of items still unlabeled until there are none.
  Outcome<ProjectRecord> Complete(int64_t project_id);

 private:
  pg::Pool& pool_;
};

}  // namespace labelloop::labeling::storage
