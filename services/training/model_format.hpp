// A trained model in its portable form "labelloop.model.v1": spec, class list, feature
// standardisation and dense layers. The JSON layout is documented in README.md and is
// what dl_manager exports and applies; the same content also travels as the
// labelloop.v1.Model protobuf (see service.cpp).
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "services/training/metrics.hpp"
#include "services/training/network.hpp"
#include "services/training/spec.hpp"

namespace labelloop::training {

inline constexpr const char* kModelFormat = "labelloop.model.v1";

struct PortableModel {
  ModelSpec spec;
  bool multi_label = false;
  std::vector<std::string> classes;
  int feature_dim = 0;
  Eigen::VectorXf mean;
  Eigen::VectorXf std;  // a 0 is applied as 1
  Network<float> net;
  Metrics metrics;
};

nlohmann::json ModelToJson(const PortableModel& model);
// Validates shapes and names the first problem in *error.
std::optional<PortableModel> ModelFromJson(const nlohmann::json& j, std::string* error);

// x' = (x - mean) / std, column by column (features x n).
Eigen::MatrixXf Standardize(const PortableModel& model, const Eigen::MatrixXf& raw);
// Class probabilities (classes x n) for raw feature vectors (feature_dim x n).
Eigen::MatrixXf PredictProbabilities(const PortableModel& model,
                                     const Eigen::Ref<const Eigen::MatrixXf>& raw);
// The predicted class names of one column of probabilities.
std::vector<std::string> PredictedClasses(const PortableModel& model,
                                          const Eigen::Ref<const Eigen::VectorXf>& probs);

}  // namespace labelloop::training
