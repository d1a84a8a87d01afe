#include "services/labeling/ingest/project.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace labelloop::labeling::ingest {

bool LoadProject(pqxx::transaction_base& tx, int64_t project_id, bool for_update,
                 ProjectInfo* out) {
  std::string sql =
      "SELECT data_kind, label_kind, status, array_to_json(classes)::text, "
      "judgements_per_item, feature_dim, validators::text FROM labeling.projects WHERE id = $1";
  if (for_update) sql += " FOR UPDATE";
  const pqxx::result r = tx.exec_params(sql, project_id);
  if (r.empty()) return false;
  const auto row = r[0];
  out->id = project_id;
  out->data_kind = row[0].as<std::string>();
  out->label_kind = row[1].as<std::string>();
  out->status = row[2].as<std::string>();
  out->classes.clear();
  for (const auto& c : nlohmann::json::parse(row[3].as<std::string>())) {
    out->classes.push_back(c.get<std::string>());
  }
  out->judgements_per_item = row[4].as<int>();
  out->feature_dim.reset();
  if (!row[5].is_null()) out->feature_dim = row[5].as<int>();
  if (auto err = ParseValidators(row[6].as<std::string>(), &out->validators); !err.empty()) {
    throw std::runtime_error("project " + std::to_string(project_id) +
                             " has invalid validators (fix them with UpdateProject): " + err);
  }
  return true;
}

std::string CheckLabels(const ProjectInfo& project, const std::vector<std::string_view>& labels) {
  if (auto e = CheckLabelCount(project.validators, labels.size()); !e.empty()) return e;
  if (labels.empty()) return "";
  if (project.label_kind == "single" && labels.size() > 1) {
    return std::to_string(labels.size()) +
           " labels given, the project is single-choice (one class per item)";
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (std::find(project.classes.begin(), project.classes.end(), labels[i]) ==
        project.classes.end()) {
      std::string list;
      for (size_t k = 0; k < project.classes.size() && k < 20; ++k) {
        list += (k == 0 ? "" : ", ") + project.classes[k];
      }
      if (project.classes.size() > 20) list += ", ...";
      return "label '" + std::string(labels[i].substr(0, 100)) + "' is not a class of project " +
             std::to_string(project.id) + " (classes: " + list + ")";
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j] == labels[i]) return "label '" + std::string(labels[i]) + "' given twice";
    }
  }
  return "";
}

void SplitLabels(std::string_view cell, std::string_view separator, bool multi,
                 std::vector<std::string_view>* out) {
  out->clear();
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  cell = trim(cell);
  if (cell.empty()) return;
  if (!multi || separator.empty()) {
    out->push_back(cell);
    return;
  }
  size_t start = 0;
  while (start <= cell.size()) {
    size_t end = cell.find(separator, start);
    if (end == std::string_view::npos) end = cell.size();
    auto part = trim(cell.substr(start, end - start));
    if (!part.empty()) out->push_back(part);
    start = end + separator.size();
  }
}

}  // namespace labelloop::labeling::ingest
