#include "services/dl_manager/archive/classifier.hpp"

#include <cmath>
#include <stdexcept>

namespace labelloop::dl_manager {
namespace {

void Require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("model JSON: " + what);
}

Eigen::RowVectorXf Vector(const nlohmann::json& j, size_t n, const std::string& field) {
  Require(j.is_array() && j.size() == n,
          field + " must be an array of " + std::to_string(n) + " numbers");
  Eigen::RowVectorXf v(static_cast<Eigen::Index>(n));
  for (size_t i = 0; i < n; ++i) {
    Require(j[i].is_number(), field + "[" + std::to_string(i) + "] is not a number");
    v(static_cast<Eigen::Index>(i)) = j[i].get<float>();
  }
  return v;
}

}  // namespace

Classifier Classifier::FromJson(const nlohmann::json& model) {
  Require(model.is_object(), "not an object");
  Require(model.value("format", "") == "labelloop.model.v1",
          "format must be \"labelloop.model.v1\"");
  Classifier c;
  Require(model.contains("classes") && model["classes"].is_array() && !model["classes"].empty(),
          "classes must be a non-empty array");
  for (const auto& name : model["classes"]) {
    Require(name.is_string(), "classes must be strings");
    c.classes_.push_back(name.get<std::string>());
  }
  Require(model.contains("feature_dim") && model["feature_dim"].is_number_integer() &&
              model["feature_dim"].get<int>() > 0,
          "feature_dim must be a positive integer");
  c.feature_dim_ = model["feature_dim"].get<int>();
  c.multi_label_ = model.value("multi_label", false);
  const auto dim = static_cast<size_t>(c.feature_dim_);
  if (model.contains("standardization") && model["standardization"].is_object()) {
    const auto& s = model["standardization"];
    c.mean_ = Vector(s.value("mean", nlohmann::json::array()), dim, "standardization.mean");
    Eigen::RowVectorXf std =
        Vector(s.value("std", nlohmann::json::array()), dim, "standardization.std");
    c.inv_std_ = std.unaryExpr([](float v) { return v == 0.0f ? 1.0f : 1.0f / v; });
  } else {
    c.mean_ = Eigen::RowVectorXf::Zero(c.feature_dim_);
    c.inv_std_ = Eigen::RowVectorXf::Ones(c.feature_dim_);
  }
  Require(model.contains("layers") && model["layers"].is_array() && !model["layers"].empty(),
          "layers must be a non-empty array");
  size_t inputs = dim;
  for (size_t l = 0; l < model["layers"].size(); ++l) {
    const auto& layer = model["layers"][l];
    const std::string where = "layers[" + std::to_string(l) + "]";
    Require(layer.is_object() && layer.contains("weights") && layer["weights"].is_array() &&
                !layer["weights"].empty(),
            where + ".weights must be a non-empty array of rows");
    const auto& w = layer["weights"];
    const size_t outputs = w.size();
    Layer out;
    out.weights_t.resize(static_cast<Eigen::Index>(inputs), static_cast<Eigen::Index>(outputs));
    for (size_t o = 0; o < outputs; ++o) {
      Eigen::RowVectorXf row = Vector(w[o], inputs, where + ".weights[" + std::to_string(o) + "]");
      out.weights_t.col(static_cast<Eigen::Index>(o)) = row.transpose();
    }
    out.bias = Vector(layer.value("bias", nlohmann::json::array()), outputs, where + ".bias");
    const std::string act = layer.value("activation", "");
    if (act == "relu") {
      out.activation = Activation::kRelu;
    } else if (act == "softmax") {
      out.activation = Activation::kSoftmax;
    } else if (act == "sigmoid") {
      out.activation = Activation::kSigmoid;
    } else if (act == "linear" || act == "identity" || act.empty()) {
      out.activation = Activation::kLinear;
    } else {
      Require(false, where + ".activation \"" + act + "\" is not relu, softmax or sigmoid");
    }
    c.layers_.push_back(std::move(out));
    inputs = outputs;
  }
  Require(inputs == c.classes_.size(), "the last layer has " + std::to_string(inputs) +
                                           " outputs but there are " +
                                           std::to_string(c.classes_.size()) + " classes");
  // The output is a probability whatever the file says: softmax or sigmoid last.
  auto& last = c.layers_.back().activation;
  if (last != Activation::kSoftmax && last != Activation::kSigmoid) {
    last = c.multi_label_ ? Activation::kSigmoid : Activation::kSoftmax;
  }
  return c;
}

Eigen::MatrixXf Classifier::Predict(const Eigen::MatrixXf& features) const {
  Eigen::MatrixXf h = (features.rowwise() - mean_).array().rowwise() * inv_std_.array();
  for (const auto& layer : layers_) {
    Eigen::MatrixXf next = h * layer.weights_t;
    next.rowwise() += layer.bias;
    switch (layer.activation) {
      case Activation::kRelu:
        next = next.cwiseMax(0.0f);
        break;
      case Activation::kSigmoid:
        next = (1.0f + (-next.array()).exp()).inverse().matrix();
        break;
      case Activation::kSoftmax: {
        Eigen::VectorXf max = next.rowwise().maxCoeff();
        next = (next.colwise() - max).array().exp().matrix();
        Eigen::VectorXf sum = next.rowwise().sum();
        next = next.array().colwise() / sum.array();
        break;
      }
      case Activation::kLinear:
        break;
    }
    h = std::move(next);
  }
  return h;
}

Decision Decide(const float* p, int n, bool multi_label) {
  Decision d;
  if (n <= 0) return d;
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (p[i] > p[best]) best = i;
  }
  d.confidence = p[best];
  if (!multi_label) {
    d.classes.push_back(best);
  } else {
    for (int i = 0; i < n; ++i) {
      if (p[i] >= 0.5f) d.classes.push_back(i);
    }
  }
  return d;
}

}  // namespace labelloop::dl_manager
