#include "services/labeling/domain/schema.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace labelloop::labeling {

std::optional<LabelKind> ParseLabelKind(std::string_view text) {
  if (text == "single") return LabelKind::kSingle;
  if (text == "multi") return LabelKind::kMulti;
  return std::nullopt;
}

const char* LabelKindName(LabelKind kind) {
  return kind == LabelKind::kSingle ? "single" : "multi";
}

std::string CheckProjectName(const std::string& name) {
  if (name.empty()) return "name: must not be empty";
  if (name.size() > kMaxProjectNameLength) {
    return "name: at most " + std::to_string(kMaxProjectNameLength) + " characters";
  }
  return "";
}

std::string CheckDataKind(const std::string& data_kind) {
  if (data_kind == "tabular" || data_kind == "text" || data_kind == "image") return "";
  return "data_kind: must be one of tabular, text, image (got '" + data_kind + "')";
}

std::string CheckSchema(const std::string& kind, const std::vector<std::string>& classes) {
  if (!ParseLabelKind(kind)) {
    return "schema.kind: must be 'single' or 'multi' (got '" + kind + "')";
  }
  if (classes.empty()) return "schema.classes: at least one class is required";
  if (classes.size() > static_cast<size_t>(kMaxClasses)) {
    return "schema.classes: at most " + std::to_string(kMaxClasses) + " classes";
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < classes.size(); ++i) {
    const auto& c = classes[i];
    if (c.empty()) return "schema.classes[" + std::to_string(i) + "]: must not be empty";
    if (c.size() > kMaxClassNameLength) {
      return "schema.classes[" + std::to_string(i) + "]: at most " +
             std::to_string(kMaxClassNameLength) + " characters";
    }
    if (!seen.insert(c).second) return "schema.classes: class '" + c + "' is listed twice";
  }
  return "";
}

std::string CheckJudgementsPerItem(int64_t k) {
  if (k < 1 || k > kMaxJudgementsPerItem) {
    return "judgements_per_item: must be between 1 and " + std::to_string(kMaxJudgementsPerItem) +
           " (got " + std::to_string(k) + ")";
  }
  return "";
}

std::string CheckJsonObject(const std::string& field, const std::string& json) {
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (parsed.is_discarded()) return field + ": not valid JSON";
  if (!parsed.is_object()) return field + ": must be a JSON object";
  return "";
}

std::string CheckSettings(const std::string& json) {
  if (auto error = CheckJsonObject("settings_json", json); !error.empty()) return error;
  auto settings = nlohmann::json::parse(json);
  if (settings.contains("strategy")) {
    static const std::set<std::string> kStrategies = {"least_confidence", "margin", "entropy",
                                                      "random", "batch_diverse"};
    const auto& s = settings["strategy"];
    if (!s.is_string() || kStrategies.count(s.get<std::string>()) == 0) {
      return "settings_json.strategy: must be one of least_confidence, margin, entropy, random, "
             "batch_diverse";
    }
  }
  if (settings.contains("retrain_every")) {
    const auto& r = settings["retrain_every"];
    if (!r.is_number_integer() || r.get<int64_t>() < 1) {
      return "settings_json.retrain_every: must be a positive integer";
    }
  }
  return "";
}

std::vector<std::string> RemovedClasses(const std::vector<std::string>& before,
                                        const std::vector<std::string>& after) {
  std::set<std::string> kept(after.begin(), after.end());
  std::vector<std::string> removed;
  for (const auto& c : before) {
    if (kept.count(c) == 0) removed.push_back(c);
  }
  return removed;
}

std::string ClassRemovalRefusal(const std::vector<std::pair<std::string, int64_t>>& usage) {
  std::string message;
  for (const auto& [name, count] : usage) {
    if (count <= 0) continue;
    message += message.empty() ? "schema.classes: " : "; ";
    message += "class '" + name + "' is used by " + std::to_string(count) +
               (count == 1 ? " label" : " labels");
  }
  if (!message.empty()) {
    message += " and cannot be renamed or dropped (classes may only be added while in use)";
  }
  return message;
}

LabelCheck CheckLabel(const LabelSchema& schema, const std::vector<std::string>& classes) {
  LabelCheck out;
  if (classes.empty()) {
    out.error = "classes: at least one class is required";
    return out;
  }
  std::set<std::string> given;
  for (const auto& c : classes) {
    if (std::find(schema.classes.begin(), schema.classes.end(), c) == schema.classes.end()) {
      std::string known;
      for (const auto& k : schema.classes) known += (known.empty() ? "" : ", ") + k;
      out.error = "classes: unknown class '" + c + "' (the project's classes: " + known + ")";
      return out;
    }
    if (!given.insert(c).second) {
      out.error = "classes: class '" + c + "' is given twice";
      return out;
    }
  }
  if (schema.kind == LabelKind::kSingle && classes.size() != 1) {
    out.error = "classes: this project is single-choice: give exactly one class (got " +
                std::to_string(classes.size()) + ")";
    return out;
  }
  for (const auto& c : schema.classes) {
    if (given.count(c) != 0) out.classes.push_back(c);
  }
  return out;
}

}  // namespace labelloop::labeling
