#include "services/training/model_format.hpp"

namespace labelloop::training {
namespace {

std::optional<Activation> ParseActivation(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "softmax") return Activation::kSoftmax;
  if (name == "sigmoid") return Activation::kSigmoid;
  return std::nullopt;
}

Eigen::VectorXf ToVector(const std::vector<float>& v) {
  return Eigen::Map<const Eigen::VectorXf>(v.data(), static_cast<Eigen::Index>(v.size()));
}

std::vector<float> FromVector(const Eigen::VectorXf& v) {
  return std::vector<float>(v.data(), v.data() + v.size());
}

}  // namespace

nlohmann::json ModelToJson(const PortableModel& m) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : m.net.layers()) {
    nlohmann::json rows = nlohmann::json::array();
    for (Eigen::Index r = 0; r < layer.w.rows(); ++r) {
      std::vector<float> row(static_cast<size_t>(layer.w.cols()));
      for (Eigen::Index c = 0; c < layer.w.cols(); ++c) row[static_cast<size_t>(c)] = layer.w(r, c);
      rows.push_back(row);
    }
    layers.push_back({{"weights", rows},
                      {"bias", FromVector(layer.b)},
                      {"activation", ActivationName(layer.activation)}});
  }
  return {{"format", kModelFormat},
          {"model_type", ModelKindName(m.spec.model_type)},
          {"multi_label", m.multi_label},
          {"classes", m.classes},
          {"feature_dim", m.feature_dim},
          {"standardization", {{"mean", FromVector(m.mean)}, {"std", FromVector(m.std)}}},
          {"layers", layers},
          {"spec", SpecToJson(m.spec)},
          {"metrics", MetricsToJson(m.metrics)}};
}

std::optional<PortableModel> ModelFromJson(const nlohmann::json& j, std::string* error) {
  try {
    if (j.value("format", "") != kModelFormat) {
      *error = std::string("format: expected ") + kModelFormat;
      return std::nullopt;
    }
    PortableModel m;
    auto spec = SpecFromJson(j.at("spec"));
    if (!spec.ok()) {
      *error = spec.error;
      return std::nullopt;
    }
    m.spec = spec.spec;
    m.multi_label = j.at("multi_label").get<bool>();
    m.classes = j.at("classes").get<std::vector<std::string>>();
    m.feature_dim = j.at("feature_dim").get<int>();
    m.mean = ToVector(j.at("standardization").at("mean").get<std::vector<float>>());
    m.std = ToVector(j.at("standardization").at("std").get<std::vector<float>>());
    if (m.mean.size() != m.feature_dim || m.std.size() != m.feature_dim) {
      *error = "standardization: mean and std need feature_dim values";
      return std::nullopt;
    }
    int in = m.feature_dim;
    for (const auto& jl : j.at("layers")) {
      Layer<float> layer;
      auto act = ParseActivation(jl.at("activation").get<std::string>());
      if (!act) {
        *error = "layers[].activation: must be relu, softmax or sigmoid";
        return std::nullopt;
      }
      layer.activation = *act;
      const auto rows = jl.at("weights").get<std::vector<std::vector<float>>>();
      layer.w.resize(static_cast<Eigen::Index>(rows.size()), in);
      for (size_t r = 0; r < rows.size(); ++r) {
        if (static_cast<int>(rows[r].size()) != in) {
          *error = "layers[].weights: every row needs " + std::to_string(in) + " values";
          return std::nullopt;
        }
        for (int c = 0; c < in; ++c) layer.w(static_cast<Eigen::Index>(r), c) = rows[r][c];
      }
      layer.b = ToVector(jl.at("bias").get<std::vector<float>>());
      if (layer.b.size() != layer.w.rows()) {
        *error = "layers[].bias: needs one value per row of weights";
        return std::nullopt;
      }
      in = static_cast<int>(layer.w.rows());
      m.net.layers().push_back(std::move(layer));
    }
    if (m.net.layers().empty() || in != static_cast<int>(m.classes.size())) {
      *error = "layers: the last layer needs one output per class";
      return std::nullopt;
    }
    m.net.set_multi_label(m.multi_label);
    if (j.contains("metrics")) m.metrics = MetricsFromJson(j.at("metrics"));
    return m;
  } catch (const nlohmann::json::exception& e) {
    *error = std::string("model JSON: ") + e.what();
    return std::nullopt;
  }
}

Eigen::MatrixXf Standardize(const PortableModel& m, const Eigen::MatrixXf& raw) {
  const Eigen::VectorXf inv = m.std.unaryExpr([](float s) { return s == 0.0f ? 1.0f : 1.0f / s; });
  return ((raw.colwise() - m.mean).array().colwise() * inv.array()).matrix();
}

Eigen::MatrixXf PredictProbabilities(const PortableModel& m,
                                     const Eigen::Ref<const Eigen::MatrixXf>& raw) {
  // The standardisation folded into the first layer, so the data is read once:
  // W ((x - mean) / std) + b = (W diag(1/std)) x + (b - W diag(1/std) mean).
  Network<float> folded = m.net;
  auto& first = folded.layers().front();
  const Eigen::VectorXf inv = m.std.unaryExpr([](float s) { return s == 0.0f ? 1.0f : 1.0f / s; });
  first.w = first.w * inv.asDiagonal();
  first.b -= first.w * m.mean;
  return folded.Forward(raw);
}

std::vector<std::string> PredictedClasses(const PortableModel& m,
                                          const Eigen::Ref<const Eigen::VectorXf>& probs) {
  std::vector<std::string> out;
  if (probs.size() == 0) return out;
  if (m.multi_label) {
    for (Eigen::Index c = 0; c < probs.size(); ++c) {
      if (probs(c) >= 0.5f) out.push_back(m.classes[static_cast<size_t>(c)]);
    }
  } else {
    Eigen::Index best = 0;
    probs.maxCoeff(&best);
    out.push_back(m.classes[static_cast<size_t>(best)]);
  }
  return out;
}

}  // namespace labelloop::training
