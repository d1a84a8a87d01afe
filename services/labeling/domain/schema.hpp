// Project and label-schema rules of the labeling service, in plain C++: what a valid
// project, label schema and label look like, and which schema changes are allowed.
// Every error is a message naming the request field, ready for INVALID_ARGUMENT.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace labelloop::labeling {

enum class LabelKind { kSingle, kMulti };

std::optional<LabelKind> ParseLabelKind(std::string_view text);
const char* LabelKindName(LabelKind kind);

struct LabelSchema {
  LabelKind kind = LabelKind::kSingle;
  std::vector<std::string> classes;
};

inline constexpr int kMaxClasses = 1000;
inline constexpr size_t kMaxClassNameLength = 200;
inline constexpr size_t kMaxProjectNameLength = 200;
inline constexpr int kMaxJudgementsPerItem = 50;

// Each returns an empty string when the value is valid, else a message naming the field.
std::string CheckProjectName(const std::string& name);
std::string CheckDataKind(const std::string& data_kind);
std::string CheckSchema(const std::string& kind, const std::vector<std::string>& classes);
std::string CheckJudgementsPerItem(int64_t k);
// A JSON object (the field name goes into the message).
std::string CheckJsonObject(const std::string& field, const std::string& json);
// The settings object; keys other services read are type-checked: "strategy" (one of
// the ranking strategies) and "retrain_every" (a positive integer).
std::string CheckSettings(const std::string& json);

// Classes of `before` that `after` no longer lists (a rename is a drop plus an add).
std::vector<std::string> RemovedClasses(const std::vector<std::string>& before,
                                        const std::vector<std::string>& after);

// The refusal for dropping/renaming classes that labels use, given (class, labels
// using it) for the removed classes; empty when none of them is used.
std::string ClassRemovalRefusal(const std::vector<std::pair<std::string, int64_t>>& usage);

// A label checked against the schema: the classes in canonical form (single: the one
// class; multi: the set in schema order), or an error naming the field "classes".
struct LabelCheck {
  std::string error;
  std::vector<std::string> classes;
  bool ok() const { return error.empty(); }
};
LabelCheck CheckLabel(const LabelSchema& schema, const std::vector<std::string>& classes);

}  // namespace labelloop::labeling
