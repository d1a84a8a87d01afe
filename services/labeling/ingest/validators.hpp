// Per-project validators: the checks an item must pass before it is stored (single-item
// push and uploads). Configured per project as JSON in labeling.projects.validators.
//
// Format (every key optional; unknown keys are an error so typos do not pass silently):
// {
//   "image":    {"formats": ["png", "jpeg"],          // allowed encodings (png, jpeg)
//                "min_width": 8, "max_width": 4096,   // pixels, inclusive
//                "min_height": 8, "max_height": 4096},
//   "features": {"count": 32,                         // exact feature vector length
//                "min": -1000.0, "max": 1000.0},      // every value within [min, max]
//   "text":     {"min_length": 1, "max_length": 20000},  // bytes of UTF-8
//   "labels":   {"required": true,                    // an item must come with labels
//                "min_count": 1, "max_count": 3},     // classes per item when labeled
//   "label_fields": {                                 // extra label fields (PushItem's
//     "confidence": {"type": "number", "required": true, "min": 0, "max": 1},
//     "source":     {"type": "string", "one_of": ["camera", "manual"]},
//     "verified":   {"type": "boolean"},
//     "count":      {"type": "integer", "min": 0},
//     "tags":       {"type": "string_array"}}
// }
// label_fields types: string, number, integer, boolean, string_array. "min"/"max" apply
// to number and integer, "one_of" to string. A label field not listed is refused.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace labelloop::labeling::ingest {

// Empty when validators_json is a valid validator configuration (an empty string counts
// as "{}"), else a message naming the offending key. Called when projects are created
// or updated.
std::string CheckValidatorConfig(const std::string& validators_json);

struct LabelFieldRule {
  enum class Type { kString, kNumber, kInteger, kBoolean, kStringArray };
  std::string name;
  Type type = Type::kString;
  bool required = false;
  std::optional<double> min;
  std::optional<double> max;
  std::vector<std::string> one_of;
};

struct Validators {
  std::vector<std::string> image_formats;                                // empty: png and jpeg
  int64_t min_width = 0, max_width = 0, min_height = 0, max_height = 0;  // 0: no bound
  std::optional<int> feature_count;
  std::optional<double> feature_min, feature_max;
  int64_t text_min_length = 0, text_max_length = 0;  // 0: no bound
  bool labels_required = false;
  int64_t labels_min_count = 0, labels_max_count = 0;  // 0: no bound
  std::vector<LabelFieldRule> label_fields;
};

// Parses validators JSON into *out; returns an error message or "".
std::string ParseValidators(const std::string& validators_json, Validators* out);

// Each returns "" when the value passes, else the reason (no line prefix).
std::string CheckImage(const Validators& v, std::string_view format, int width, int height);
std::string CheckFeatures(const Validators& v, std::span<const float> values);
std::string CheckText(const Validators& v, std::string_view text);
std::string CheckLabelCount(const Validators& v, size_t count);
std::string CheckLabelFields(const Validators& v, const nlohmann::json& fields);

}  // namespace labelloop::labeling::ingest
