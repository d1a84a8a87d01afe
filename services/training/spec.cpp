#include "services/training/spec.hpp"

#include <cmath>
#include <sstream>

namespace labelloop::training {
namespace {

std::string Range(const std::string& field, const std::string& what, const std::string& got) {
  return "spec." + field + ": must be " + what + " (got " + got + ")";
}

std::string Num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

const char* ModelKindName(ModelKind kind) { return kind == ModelKind::kMlp ? "mlp" : "softmax"; }
const char* WeightingName(Weighting w) { return w == Weighting::kBalanced ? "balanced" : "none"; }

SpecResult ResolveSpec(const PartialSpec& p) {
  SpecResult r;
  ModelSpec& s = r.spec;
  if (p.model_type) s.model_type = *p.model_type;
  if (p.epochs) {
    if (*p.epochs < 1 || *p.epochs > 10000) {
      r.error = Range("epochs", "between 1 and 10000", std::to_string(*p.epochs));
      return r;
    }
    s.epochs = static_cast<int>(*p.epochs);
  }
  if (p.batch_size) {
    if (*p.batch_size < 1 || *p.batch_size > 65536) {
      r.error = Range("batch_size", "between 1 and 65536", std::to_string(*p.batch_size));
      return r;
    }
    s.batch_size = static_cast<int>(*p.batch_size);
  }
  if (p.learning_rate) {
    if (!std::isfinite(*p.learning_rate) || *p.learning_rate <= 0 || *p.learning_rate > 10) {
      r.error = Range("learning_rate", "> 0 and <= 10", Num(*p.learning_rate));
      return r;
    }
    s.learning_rate = *p.learning_rate;
  }
  if (p.l2) {
    if (!std::isfinite(*p.l2) || *p.l2 < 0 || *p.l2 > 10) {
      r.error = Range("l2", "between 0 and 10", Num(*p.l2));
      return r;
    }
    s.l2 = *p.l2;
  }
  if (!p.hidden_units.empty()) {
    if (s.model_type != ModelKind::kMlp) {
      r.error = "spec.hidden_units: only for model_type mlp (model_type is softmax)";
      return r;
    }
    if (p.hidden_units.size() > 2) {
      r.error = Range("hidden_units", "one or two layers", std::to_string(p.hidden_units.size()));
      return r;
    }
    for (size_t i = 0; i < p.hidden_units.size(); ++i) {
      if (p.hidden_units[i] < 1 || p.hidden_units[i] > 4096) {
        r.error = Range("hidden_units[" + std::to_string(i) + "]", "between 1 and 4096",
                        std::to_string(p.hidden_units[i]));
        return r;
      }
      s.hidden_units.push_back(static_cast<int>(p.hidden_units[i]));
    }
  } else if (s.model_type == ModelKind::kMlp) {
    s.hidden_units = {64};
  }
  if (p.validation_fraction) {
    const double v = *p.validation_fraction;
    if (!std::isfinite(v) || v < 0 || v > 0.9) {
      r.error = Range("validation_fraction", "between 0 and 0.9", Num(v));
      return r;
    }
    s.validation_fraction = v;
  }
  if (p.class_weighting) s.class_weighting = *p.class_weighting;
  if (p.early_stopping_patience) {
    if (*p.early_stopping_patience < 0 || *p.early_stopping_patience > 10000) {
      r.error = Range("early_stopping_patience", "between 0 and 10000",
                      std::to_string(*p.early_stopping_patience));
      return r;
    }
    s.early_stopping_patience = static_cast<int>(*p.early_stopping_patience);
  }
  if (p.seed) s.seed = *p.seed;
  return r;
}

nlohmann::json SpecToJson(const ModelSpec& s) {
  return {{"model_type", ModelKindName(s.model_type)},
          {"epochs", s.epochs},
          {"batch_size", s.batch_size},
          {"learning_rate", s.learning_rate},
          {"l2", s.l2},
          {"hidden_units", s.hidden_units},
          {"validation_fraction", s.validation_fraction},
          {"class_weighting", WeightingName(s.class_weighting)},
          {"early_stopping_patience", s.early_stopping_patience},
          {"seed", s.seed}};
}

PartialSpec PartialFromJson(const nlohmann::json& j, std::string* error) {
  PartialSpec p;
  if (!j.is_object()) {
    *error = "spec: must be a JSON object";
    return p;
  }
  try {
    for (const auto& [key, v] : j.items()) {
      if (key == "model_type") {
        const auto name = v.get<std::string>();
        if (name == "softmax") {
          p.model_type = ModelKind::kSoftmax;
        } else if (name == "mlp") {
          p.model_type = ModelKind::kMlp;
        } else {
          *error = "spec.model_type: must be softmax or mlp (got " + name + ")";
          return p;
        }
      } else if (key == "epochs") {
        p.epochs = v.get<int64_t>();
      } else if (key == "batch_size") {
        p.batch_size = v.get<int64_t>();
      } else if (key == "learning_rate") {
        p.learning_rate = v.get<double>();
      } else if (key == "l2") {
        p.l2 = v.get<double>();
      } else if (key == "hidden_units") {
        p.hidden_units = v.get<std::vector<int64_t>>();
      } else if (key == "validation_fraction") {
        p.validation_fraction = v.get<double>();
      } else if (key == "class_weighting") {
        const auto name = v.get<std::string>();
        if (name == "none") {
          p.class_weighting = Weighting::kNone;
        } else if (name == "balanced") {
          p.class_weighting = Weighting::kBalanced;
        } else {
          *error = "spec.class_weighting: must be none or balanced (got " + name + ")";
          return p;
        }
      } else if (key == "early_stopping_patience") {
        p.early_stopping_patience = v.get<int64_t>();
      } else if (key == "seed") {
        p.seed = v.get<uint64_t>();
      } else {
        *error = "spec." + key + ": unknown field";
        return p;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    *error = std::string("spec: a field has the wrong type: ") + e.what();
  }
  return p;
}

SpecResult SpecFromJson(const nlohmann::json& j) {
  std::string error;
  auto partial = PartialFromJson(j, &error);
  if (!error.empty()) return {ModelSpec{}, error};
  return ResolveSpec(partial);
}

}  // namespace labelloop::training
