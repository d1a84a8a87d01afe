#include "services/labeling/ingest/validators.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace labelloop::labeling::ingest {
namespace {

using nlohmann::json;

std::string CheckKeys(const json& obj, const std::string& where,
                      std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : obj.items()) {
    bool known =
        std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; });
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      return where + ": unknown key '" + key + "' (allowed: " + list + ")";
    }
  }
  return "";
}

std::string GetCount(const json& obj, const char* key, const std::string& where, int64_t* out) {
  if (!obj.contains(key)) return "";
  const json& v = obj.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    return where + "." + key + ": must be a non-negative integer";
  }
  *out = v.get<int64_t>();
  return "";
}

std::string GetNumber(const json& obj, const char* key, const std::string& where,
                      std::optional<double>* out) {
  if (!obj.contains(key)) return "";
  const json& v = obj.at(key);
  if (!v.is_number()) return where + "." + key + ": must be a number";
  *out = v.get<double>();
  return "";
}

std::string ParseImage(const json& img, Validators* out) {
  if (!img.is_object()) return "image: must be an object";
  if (auto e = CheckKeys(img, "image",
                         {"formats", "min_width", "max_width", "min_height", "max_height"});
      !e.empty()) {
    return e;
  }
  if (img.contains("formats")) {
    const json& f = img.at("formats");
    if (!f.is_array() || f.empty()) return "image.formats: must be a non-empty array";
    for (const auto& x : f) {
      if (!x.is_string()) return "image.formats: entries must be strings";
      std::string s = x.get<std::string>();
      if (s == "jpg") s = "jpeg";
      if (s != "png" && s != "jpeg") {
        return "image.formats: '" + x.get<std::string>() + "' is not supported (png, jpeg)";
      }
      out->image_formats.push_back(s);
    }
  }
  for (auto [key, field] :
       {std::pair{"min_width", &out->min_width}, std::pair{"max_width", &out->max_width},
        std::pair{"min_height", &out->min_height}, std::pair{"max_height", &out->max_height}}) {
    if (auto e = GetCount(img, key, "image", field); !e.empty()) return e;
  }
  if (out->max_width > 0 && out->min_width > out->max_width) {
    return "image: min_width is larger than max_width";
  }
  if (out->max_height > 0 && out->min_height > out->max_height) {
    return "image: min_height is larger than max_height";
  }
  return "";
}

std::string ParseFeatures(const json& f, Validators* out) {
  if (!f.is_object()) return "features: must be an object";
  if (auto e = CheckKeys(f, "features", {"count", "min", "max"}); !e.empty()) return e;
  if (f.contains("count")) {
    const json& c = f.at("count");
    if (!c.is_number_integer() || c.get<int64_t>() < 1 || c.get<int64_t>() > 1000000) {
      return "features.count: must be an integer between 1 and 1000000";
    }
    out->feature_count = c.get<int>();
  }
  if (auto e = GetNumber(f, "min", "features", &out->feature_min); !e.empty()) return e;
  if (auto e = GetNumber(f, "max", "features", &out->feature_max); !e.empty()) return e;
  if (out->feature_min && out->feature_max && *out->feature_min > *out->feature_max) {
    return "features: min is larger than max";
  }
  return "";
}

std::string ParseText(const json& t, Validators* out) {
  if (!t.is_object()) return "text: must be an object";
  if (auto e = CheckKeys(t, "text", {"min_length", "max_length"}); !e.empty()) return e;
  if (auto e = GetCount(t, "min_length", "text", &out->text_min_length); !e.empty()) return e;
  if (auto e = GetCount(t, "max_length", "text", &out->text_max_length); !e.empty()) return e;
  if (out->text_max_length > 0 && out->text_min_length > out->text_max_length) {
    return "text: min_length is larger than max_length";
  }
  return "";
}

std::string ParseLabels(const json& l, Validators* out) {
  if (!l.is_object()) return "labels: must be an object";
  if (auto e = CheckKeys(l, "labels", {"required", "min_count", "max_count"}); !e.empty()) {
    return e;
  }
  if (l.contains("required")) {
    if (!l.at("required").is_boolean()) return "labels.required: must be true or false";
    out->labels_required = l.at("required").get<bool>();
  }
  if (auto e = GetCount(l, "min_count", "labels", &out->labels_min_count); !e.empty()) return e;
  if (auto e = GetCount(l, "max_count", "labels", &out->labels_max_count); !e.empty()) return e;
  if (out->labels_max_count > 0 && out->labels_min_count > out->labels_max_count) {
    return "labels: min_count is larger than max_count";
  }
  return "";
}

std::string ParseLabelFields(const json& fields, Validators* out) {
  if (!fields.is_object()) return "label_fields: must be an object of field rules";
  for (const auto& [name, rule] : fields.items()) {
    const std::string where = "label_fields." + name;
    if (!rule.is_object()) return where + ": must be an object";
    if (auto e = CheckKeys(rule, where, {"type", "required", "min", "max", "one_of"}); !e.empty()) {
      return e;
    }
    LabelFieldRule r;
    r.name = name;
    if (!rule.contains("type") || !rule.at("type").is_string()) {
      return where + ".type: required (string, number, integer, boolean, string_array)";
    }
    const std::string type = rule.at("type").get<std::string>();
    using T = LabelFieldRule::Type;
    if (type == "string")
      r.type = T::kString;
    else if (type == "number")
      r.type = T::kNumber;
    else if (type == "integer")
      r.type = T::kInteger;
    else if (type == "boolean")
      r.type = T::kBoolean;
    else if (type == "string_array")
      r.type = T::kStringArray;
    else
      return where + ".type: '" + type +
             "' is not one of string, number, integer, boolean, string_array";
    if (rule.contains("required")) {
      if (!rule.at("required").is_boolean()) return where + ".required: must be true or false";
      r.required = rule.at("required").get<bool>();
    }
    if (auto e = GetNumber(rule, "min", where, &r.min); !e.empty()) return e;
    if (auto e = GetNumber(rule, "max", where, &r.max); !e.empty()) return e;
    if ((r.min || r.max) && r.type != T::kNumber && r.type != T::kInteger) {
      return where + ": min/max apply to number and integer fields only";
    }
    if (r.min && r.max && *r.min > *r.max) return where + ": min is larger than max";
    if (rule.contains("one_of")) {
      const json& o = rule.at("one_of");
      if (r.type != T::kString) return where + ".one_of: applies to string fields only";
      if (!o.is_array() || o.empty()) return where + ".one_of: must be a non-empty array";
      for (const auto& x : o) {
        if (!x.is_string()) return where + ".one_of: entries must be strings";
        r.one_of.push_back(x.get<std::string>());
      }
    }
    out->label_fields.push_back(std::move(r));
  }
  return "";
}

std::string FormatNumber(double d) {
  std::string s = std::to_string(d);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

std::string ParseValidators(const std::string& validators_json, Validators* out) {
  *out = Validators{};
  if (validators_json.find_first_not_of(" \t\r\n") == std::string::npos) return "";
  json doc = json::parse(validators_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return "validators: not valid JSON";
  if (!doc.is_object()) return "validators: must be a JSON object";
  if (auto e =
          CheckKeys(doc, "validators", {"image", "features", "text", "labels", "label_fields"});
      !e.empty()) {
    return e;
  }
  if (doc.contains("image")) {
    if (auto e = ParseImage(doc.at("image"), out); !e.empty()) return e;
  }
  if (doc.contains("features")) {
    if (auto e = ParseFeatures(doc.at("features"), out); !e.empty()) return e;
  }
  if (doc.contains("text")) {
    if (auto e = ParseText(doc.at("text"), out); !e.empty()) return e;
  }
  if (doc.contains("labels")) {
    if (auto e = ParseLabels(doc.at("labels"), out); !e.empty()) return e;
  }
  if (doc.contains("label_fields")) {
    if (auto e = ParseLabelFields(doc.at("label_fields"), out); !e.empty()) return e;
  }
  return "";
}

std::string CheckValidatorConfig(const std::string& validators_json) {
  Validators v;
  return ParseValidators(validators_json, &v);
}

std::string CheckImage(const Validators& v, std::string_view format, int width, int height) {
  if (!v.image_formats.empty() &&
      std::find(v.image_formats.begin(), v.image_formats.end(), format) == v.image_formats.end()) {
    std::string list;
    for (const auto& f : v.image_formats) list += (list.empty() ? "" : ", ") + f;
    return "image format " + std::string(format) +
           " is not allowed by the project (allowed: " + list + ")";
  }
  auto dims = std::to_string(width) + "x" + std::to_string(height);
  if (v.min_width > 0 && width < v.min_width) {
    return "image " + dims + " is narrower than min_width " + std::to_string(v.min_width);
  }
  if (v.max_width > 0 && width > v.max_width) {
    return "image " + dims + " is wider than max_width " + std::to_string(v.max_width);
  }
  if (v.min_height > 0 && height < v.min_height) {
    return "image " + dims + " is lower than min_height " + std::to_string(v.min_height);
  }
  if (v.max_height > 0 && height > v.max_height) {
    return "image " + dims + " is higher than max_height " + std::to_string(v.max_height);
  }
  return "";
}

std::string CheckFeatures(const Validators& v, std::span<const float> values) {
  if (v.feature_count && static_cast<int>(values.size()) != *v.feature_count) {
    return std::to_string(values.size()) + " features, the project's validators require " +
           std::to_string(*v.feature_count);
  }
  if (v.feature_min || v.feature_max) {
    for (size_t i = 0; i < values.size(); ++i) {
      const double x = values[i];
      if ((v.feature_min && x < *v.feature_min) || (v.feature_max && x > *v.feature_max)) {
        return "feature " + std::to_string(i) + " = " + FormatNumber(x) + " is outside [" +
               (v.feature_min ? FormatNumber(*v.feature_min) : "-inf") + ", " +
               (v.feature_max ? FormatNumber(*v.feature_max) : "inf") + "]";
      }
    }
  }
  return "";
}

std::string CheckText(const Validators& v, std::string_view text) {
  if (v.text_min_length > 0 && static_cast<int64_t>(text.size()) < v.text_min_length) {
    return "text of " + std::to_string(text.size()) + " bytes is shorter than min_length " +
           std::to_string(v.text_min_length);
  }
  if (v.text_max_length > 0 && static_cast<int64_t>(text.size()) > v.text_max_length) {
    return "text of " + std::to_string(text.size()) + " bytes is longer than max_length " +
           std::to_string(v.text_max_length);
  }
  return "";
}

std::string CheckLabelCount(const Validators& v, size_t count) {
  if (count == 0) return v.labels_required ? "labels are required by the project's validators" : "";
  const auto n = static_cast<int64_t>(count);
  if (v.labels_min_count > 0 && n < v.labels_min_count) {
    return std::to_string(n) + " labels, at least " + std::to_string(v.labels_min_count) +
           " required";
  }
  if (v.labels_max_count > 0 && n > v.labels_max_count) {
    return std::to_string(n) + " labels, at most " + std::to_string(v.labels_max_count) +
           " allowed";
  }
  return "";
}

std::string CheckLabelFields(const Validators& v, const nlohmann::json& fields) {
  if (fields.is_null()) {
    for (const auto& r : v.label_fields) {
      if (r.required) return "label field '" + r.name + "' is required";
    }
    return "";
  }
  if (!fields.is_object()) return "label fields must be a JSON object";
  for (const auto& [name, value] : fields.items()) {
    bool known = std::any_of(v.label_fields.begin(), v.label_fields.end(),
                             [&](const LabelFieldRule& r) { return r.name == name; });
    if (!known) return "label field '" + name + "' is not declared in the project's validators";
  }
  using T = LabelFieldRule::Type;
  for (const auto& r : v.label_fields) {
    auto it = fields.find(r.name);
    if (it == fields.end() || it->is_null()) {
      if (r.required) return "label field '" + r.name + "' is required";
      continue;
    }
    const json& x = *it;
    const std::string where = "label field '" + r.name + "'";
    switch (r.type) {
      case T::kString:
        if (!x.is_string()) return where + " must be a string";
        if (!r.one_of.empty() &&
            std::find(r.one_of.begin(), r.one_of.end(), x.get<std::string>()) == r.one_of.end()) {
          return where + " = '" + x.get<std::string>() + "' is not one of the allowed values";
        }
        break;
      case T::kBoolean:
        if (!x.is_boolean()) return where + " must be true or false";
        break;
      case T::kStringArray:
        if (!x.is_array() ||
            !std::all_of(x.begin(), x.end(), [](const json& e) { return e.is_string(); })) {
          return where + " must be an array of strings";
        }
        break;
      case T::kInteger:
      case T::kNumber: {
        if (r.type == T::kInteger ? !x.is_number_integer() : !x.is_number()) {
          return where + (r.type == T::kInteger ? " must be an integer" : " must be a number");
        }
        const double d = x.get<double>();
        if ((r.min && d < *r.min) || (r.max && d > *r.max) || !std::isfinite(d)) {
          return where + " = " + FormatNumber(d) + " is outside [" +
                 (r.min ? FormatNumber(*r.min) : "-inf") + ", " +
                 (r.max ? FormatNumber(*r.max) : "inf") + "]";
        }
        break;
      }
    }
  }
  return "";
}

}  // namespace labelloop::labeling::ingest
