// The model spec of a training job: every field with a default, validated with an
// error that names the bad field, and its JSON form stored in training.jobs.spec.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace labelloop::training {

enum class ModelKind { kSoftmax, kMlp };
enum class Weighting { kNone, kBalanced };

struct ModelSpec {
  ModelKind model_type = ModelKind::kSoftmax;
  int epochs = 30;
  int batch_size = 64;
  double learning_rate = 0.01;
  double l2 = 1e-4;
  std::vector<int> hidden_units;  // MLP only; defaults to {64}
  double validation_fraction = 0.2;
  Weighting class_weighting = Weighting::kNone;
  int early_stopping_patience = 5;  // 0 = off
  uint64_t seed = 42;
};

// A spec as given by a caller: unset fields take the defaults.
struct PartialSpec {
  std::optional<ModelKind> model_type;
  std::optional<int64_t> epochs;
  std::optional<int64_t> batch_size;
  std::optional<double> learning_rate;
  std::optional<double> l2;
  std::vector<int64_t> hidden_units;
  std::optional<double> validation_fraction;
  std::optional<Weighting> class_weighting;
  std::optional<int64_t> early_stopping_patience;
  std::optional<uint64_t> seed;
};

struct SpecResult {
  ModelSpec spec;
  std::string error;  // "spec.epochs: must be between 1 and 10000 (got 0)"; empty when valid
  bool ok() const { return error.empty(); }
};

// Fills defaults and validates.
SpecResult ResolveSpec(const PartialSpec& partial);

const char* ModelKindName(ModelKind kind);  // "softmax" | "mlp"
const char* WeightingName(Weighting w);     // "none" | "balanced"

nlohmann::json SpecToJson(const ModelSpec& spec);
// Reads a stored spec (or a partial one from a policy); unknown or bad fields are errors.
SpecResult SpecFromJson(const nlohmann::json& j);
PartialSpec PartialFromJson(const nlohmann::json& j, std::string* error);

}  // namespace labelloop::training
