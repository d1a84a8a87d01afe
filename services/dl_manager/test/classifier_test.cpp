#include "services/dl_manager/archive/classifier.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace labelloop::dl_manager {
namespace {

using nlohmann::json;

json Softmax() {
  return json{{"format", "labelloop.model.v1"},
              {"model_type", "softmax"},
              {"multi_label", false},
              {"classes", {"a", "b"}},
              {"feature_dim", 2},
              {"standardization", {{"mean", {1.0, 0.0}}, {"std", {2.0, 0.0}}}},
              {"layers", json::array({json{{"weights", {{1.0, 0.0}, {0.0, 1.0}}},
                                           {"bias", {0.0, 0.5}},
                                           {"activation", "softmax"}}})}};
}

TEST(Classifier, AppliesStandardizationAndSoftmax) {
  auto c = Classifier::FromJson(Softmax());
  Eigen::MatrixXf x(1, 2);
  x << 3.0f, 1.0f;  // standardised: (3-1)/2 = 1, (1-0)/1 (std 0 counts as 1) = 1
  Eigen::MatrixXf p = c.Predict(x);
  const double za = 1.0, zb = 1.5;
  const double pa = std::exp(za) / (std::exp(za) + std::exp(zb));
  EXPECT_NEAR(p(0, 0), pa, 1e-6);
  EXPECT_NEAR(p(0, 1), 1 - pa, 1e-6);
}

TEST(Classifier, AppliesAnMlpWithSigmoidForMultiLabel) {
  json m = Softmax();
  m["multi_label"] = true;
  m["model_type"] = "mlp";
  m.erase("standardization");
  m["layers"] = json::array({json{{"weights", {{1.0, -1.0}, {-1.0, 1.0}, {1.0, 1.0}}},
                                  {"bias", {0.0, 0.0, 0.0}},
                                  {"activation", "relu"}},
                             json{{"weights", {{1.0, 0.0, 0.0}, {0.0, 1.0, 1.0}}},
                                  {"bias", {0.0, -1.0}},
                                  {"activation", "sigmoid"}}});
  auto c = Classifier::FromJson(m);
  Eigen::MatrixXf x(1, 2);
  x << 2.0f, 1.0f;  // hidden: relu(1, -1, 3) = (1, 0, 3); out: (1, 0 + 3 - 1 = 2)
  Eigen::MatrixXf p = c.Predict(x);
  EXPECT_NEAR(p(0, 0), 1 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(p(0, 1), 1 / (1 + std::exp(-2.0)), 1e-6);
}

TEST(Classifier, RejectsBrokenModelsNamingTheField) {
  auto message = [](json m) {
    try {
      Classifier::FromJson(m);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  json m = Softmax();
  m["format"] = "other";
  EXPECT_NE(message(m).find("format"), std::string::npos);
  m = Softmax();
  m["layers"][0]["weights"][1] = {1.0};
  EXPECT_NE(message(m).find("layers[0].weights[1]"), std::string::npos) << message(m);
  m = Softmax();
  m["classes"] = {"a", "b", "c"};
  EXPECT_NE(message(m).find("3 classes"), std::string::npos) << message(m);
  m = Softmax();
  m["layers"][0]["activation"] = "tanh";
  EXPECT_NE(message(m).find("tanh"), std::string::npos);
}

TEST(Decide, PicksArgmaxOrEveryClassOverHalf) {
  const float p[] = {0.2f, 0.7f, 0.6f};
  auto single = Decide(p, 3, false);
  EXPECT_EQ(single.classes, std::vector<int>({1}));
  EXPECT_FLOAT_EQ(single.confidence, 0.7f);
  auto multi = Decide(p, 3, true);
  EXPECT_EQ(multi.classes, std::vector<int>({1, 2}));
  EXPECT_FLOAT_EQ(multi.confidence, 0.7f);
}

}  // namespace
}  // namespace labelloop::dl_manager
