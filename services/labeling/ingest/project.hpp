// What ingestion needs to know about a project, and the checks that depend on it.
#pragma once

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

#include "services/labeling/ingest/validators.hpp"

namespace labelloop::labeling::ingest {

inline constexpr const char* kImportAnnotator = "import";

struct ProjectInfo {
  int64_t id = 0;
  std::string data_kind;   // tabular | text | image
  std::string label_kind;  // single | multi
  std::string status;      // active | archived | complete
  std::vector<std::string> classes;
  int judgements_per_item = 1;
  std::optional<int> feature_dim;
  Validators validators;
};

// Reads the project; returns false when it does not exist. Throws on bad stored
// validators (std::runtime_error naming them) and database errors.
bool LoadProject(pqxx::transaction_base& tx, int64_t project_id, bool for_update, ProjectInfo* out);

// "" when `labels` (class names) fit the project's schema and validators, else why not.
std::string CheckLabels(const ProjectInfo& project, const std::vector<std::string_view>& labels);

// Splits a label cell on `separator` (multi-label projects), trimming spaces; an empty
// cell gives no labels.
void SplitLabels(std::string_view cell, std::string_view separator, bool multi,
                 std::vector<std::string_view>* out);

}  // namespace labelloop::labeling::ingest
