// Applies a model in its portable JSON form ("labelloop.model.v1", written by the
// training service) to feature vectors, for unlabeled items the stored predictions
// do not cover:
//   x' = (x - mean) / std (std 0 -> 1); per layer h = act(W h + b);
//   the last activation is softmax (single-label) or sigmoid (multi-label).
#pragma once

#include <Eigen/Dense>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace labelloop::dl_manager {

class Classifier {
 public:
  // Throws std::invalid_argument naming what is wrong with the model JSON.
  static Classifier FromJson(const nlohmann::json& model);

  // rows x feature_dim features -> rows x classes probabilities.
  Eigen::MatrixXf Predict(const Eigen::MatrixXf& features) const;

  const std::vector<std::string>& classes() const { return classes_; }
  int feature_dim() const { return feature_dim_; }
  bool multi_label() const { return multi_label_; }

 private:
  enum class Activation { kRelu, kSoftmax, kSigmoid, kLinear };
  struct Layer {
    Eigen::MatrixXf weights_t;  // inputs x outputs, so that H * W^T is one product
    Eigen::RowVectorXf bias;
    Activation activation;
  };
  std::vector<std::string> classes_;
  int feature_dim_ = 0;
  bool multi_label_ = false;
  Eigen::RowVectorXf mean_;
  Eigen::RowVectorXf inv_std_;
  std::vector<Layer> layers_;
};

// The predicted classes and confidence from one row of probabilities: single-label
// picks the argmax (confidence = its probability); multi-label every class with
// p >= 0.5 (confidence = the largest probability).
struct Decision {
  std::vector<int> classes;
  float confidence = 0;
};
Decision Decide(const float* probabilities, int n, bool multi_label);

}  // namespace labelloop::dl_manager
