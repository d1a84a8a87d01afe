#include "services/training/trainer.hpp"

#include <gtest/gtest.h>

#include "services/training/test/synthetic.hpp"

namespace labelloop::training {
namespace {

using testdata::Blobs;

ModelSpec Spec(ModelKind kind, int epochs = 20) {
  PartialSpec p;
  p.model_type = kind;
  p.epochs = epochs;
  auto r = ResolveSpec(p);
  EXPECT_TRUE(r.ok()) << r.error;
  return r.spec;
}

TEST(Trainer, SoftmaxLearnsSeparableData) {
  const Dataset d = Blobs(1000, 8, 4, 4.0, 0.0, 1);
  const auto out = Train(d, Spec(ModelKind::kSoftmax), {});
  ASSERT_FALSE(out.stopped);
  ASSERT_FALSE(out.history.empty());
  EXPECT_GE(out.history.back().val_accuracy, 0.99);
  EXPECT_GE(out.model.metrics.accuracy, 0.99);
  EXPECT_EQ(out.model.metrics.evaluated_on, "validation");
  EXPECT_EQ(out.model.metrics.validation_items + out.model.metrics.train_items, 1000);
  EXPECT_LT(out.history.back().train_loss, out.history.front().train_loss);
}

TEST(Trainer, MlpLearnsSeparableData) {
  const Dataset d = Blobs(1000, 8, 4, 4.0, 0.0, 2);
  auto spec = Spec(ModelKind::kMlp);
  spec.hidden_units = {16, 8};
  const auto out = Train(d, spec, {});
  EXPECT_GE(out.model.metrics.accuracy, 0.99);
  ASSERT_EQ(out.model.net.layers().size(), 3u);
}

TEST(Trainer, MlpLearnsXorWhichSoftmaxCannot) {
  // Four blobs in the corners of a square, opposite corners share a class.
  Dataset d;
  d.classes = {"a", "b"};
  std::mt19937_64 rng(5);
  const int n = 800;
  d.x.resize(2, n);
  d.y = Eigen::MatrixXf::Zero(2, n);
  for (int i = 0; i < n; ++i) {
    const int qx = i % 2, qy = (i / 2) % 2;
    d.x(0, i) = static_cast<float>((qx ? 2 : -2) + 0.3 * testdata::Gaussian(rng));
    d.x(1, i) = static_cast<float>((qy ? 2 : -2) + 0.3 * testdata::Gaussian(rng));
    d.label.push_back(qx ^ qy);
    d.y(qx ^ qy, i) = 1;
  }
  auto mlp = Spec(ModelKind::kMlp, 60);
  mlp.hidden_units = {16};
  EXPECT_GE(Train(d, mlp, {}).model.metrics.accuracy, 0.98);
  EXPECT_LE(Train(d, Spec(ModelKind::kSoftmax, 60), {}).model.metrics.accuracy, 0.8);
}

TEST(Trainer, NoisyMetricsMatchTheConfusionMatrixByHand) {
  const Dataset d = Blobs(1500, 6, 3, 1.0, 0.25, 3);
  const auto out = Train(d, Spec(ModelKind::kSoftmax, 10), {});
  const Metrics& m = out.model.metrics;
  ASSERT_EQ(m.confusion.size(), 3u);
  int64_t total = 0, diag = 0;
  for (size_t r = 0; r < 3; ++r) {
    for (size_t c = 0; c < 3; ++c) total += m.confusion[r][c];
    diag += m.confusion[r][r];
  }
  EXPECT_EQ(total, m.validation_items);
  EXPECT_DOUBLE_EQ(m.accuracy, static_cast<double>(diag) / static_cast<double>(total));
  EXPECT_LT(m.accuracy, 0.95);  // the noise is real
  EXPECT_GT(m.accuracy, 0.4);
  double mp = 0, mr = 0, mf = 0;
  for (size_t c = 0; c < 3; ++c) {
    int64_t col = 0, row = 0;
    for (size_t o = 0; o < 3; ++o) {
      col += m.confusion[o][c];
      row += m.confusion[c][o];
    }
    const double p = static_cast<double>(m.confusion[c][c]) / static_cast<double>(col);
    const double r = static_cast<double>(m.confusion[c][c]) / static_cast<double>(row);
    const double f = 2 * p * r / (p + r);
    EXPECT_NEAR(m.per_class[c].precision, p, 1e-12);
    EXPECT_NEAR(m.per_class[c].recall, r, 1e-12);
    EXPECT_NEAR(m.per_class[c].f1, f, 1e-12);
    EXPECT_EQ(m.per_class[c].support, row);
    mp += p / 3;
    mr += r / 3;
    mf += f / 3;
  }
  EXPECT_NEAR(m.macro_precision, mp, 1e-12);
  EXPECT_NEAR(m.macro_recall, mr, 1e-12);
  EXPECT_NEAR(m.macro_f1, mf, 1e-12);
}

TEST(Metrics, HandComputedExample) {
  // truth: a a a b b c ; predicted: a a b b c c
  const auto m = SingleLabelMetrics({0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2}, {"a", "b", "c", "d"});
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[2].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[2].recall, 1.0);
  EXPECT_EQ(m.per_class[3].support, 0);
  // "d" never occurs: it is left out of the macro averages.
  EXPECT_DOUBLE_EQ(m.macro_precision, (1.0 + 0.5 + 0.5) / 3);
  EXPECT_EQ(m.confusion[0][1], 1);
}

TEST(Metrics, MultiLabelCounts) {
  Eigen::MatrixXf truth(2, 3), probs(2, 3);
  truth << 1, 0, 1, 0, 1, 1;
  probs << 0.9f, 0.6f, 0.2f, 0.1f, 0.8f, 0.7f;
  const auto m = MultiLabelMetrics(truth, probs, {"x", "y"});
  EXPECT_EQ(m.confusion[0], (std::vector<int64_t>{0, 1, 1, 1}));  // tn fp fn tp
  EXPECT_EQ(m.confusion[1], (std::vector<int64_t>{1, 0, 0, 2}));
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6);
}

TEST(Trainer, SameSeedSameDataSameWeights) {
  const Dataset d = Blobs(600, 5, 3, 1.5, 0.1, 4);
  for (auto kind : {ModelKind::kSoftmax, ModelKind::kMlp}) {
    auto spec = Spec(kind, 5);
    const auto a = Train(d, spec, {});
    const auto b = Train(d, spec, {});
    ASSERT_EQ(a.model.net.layers().size(), b.model.net.layers().size());
    for (size_t l = 0; l < a.model.net.layers().size(); ++l) {
      EXPECT_TRUE(a.model.net.layers()[l].w == b.model.net.layers()[l].w);
      EXPECT_TRUE(a.model.net.layers()[l].b == b.model.net.layers()[l].b);
    }
    EXPECT_EQ(ModelToJson(a.model)["layers"].dump(), ModelToJson(b.model)["layers"].dump());
    spec.seed = 43;
    const auto c = Train(d, spec, {});
    EXPECT_FALSE(a.model.net.layers()[0].w == c.model.net.layers()[0].w);
  }
}

TEST(Trainer, MultiLabelLearns) {
  const Dataset d = Blobs(1200, 8, 4, 4.0, 0.0, 6, /*multi_label=*/true);
  auto spec = Spec(ModelKind::kSoftmax, 30);
  spec.class_weighting = Weighting::kBalanced;
  const auto out = Train(d, spec, {});
  EXPECT_EQ(out.model.net.layers().back().activation, Activation::kSigmoid);
  EXPECT_GE(out.model.metrics.accuracy, 0.98);
  EXPECT_EQ(out.model.metrics.confusion[0].size(), 4u);
}

TEST(Trainer, ShouldStopEndsWithinABatch) {
  const Dataset d = Blobs(1000, 4, 2, 2.0, 0.0, 7);
  int asked = 0;
  const auto out = Train(d, Spec(ModelKind::kSoftmax, 50),
                         {.should_stop = [&] { return ++asked > 3; }, .on_epoch = nullptr});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(asked, 4);
  EXPECT_TRUE(out.history.empty());
}

TEST(Trainer, EarlyStoppingKeepsTheBestEpoch) {
  const Dataset d = Blobs(300, 20, 3, 0.3, 0.3, 8);  // overfits quickly
  auto spec = Spec(ModelKind::kMlp, 300);
  spec.hidden_units = {64};
  spec.l2 = 0;
  spec.early_stopping_patience = 3;
  const auto out = Train(d, spec, {});
  EXPECT_TRUE(out.model.metrics.early_stopped);
  EXPECT_LT(out.model.metrics.epochs_run, 300);
}

TEST(Trainer, TooFewLabels) {
  Dataset d = Blobs(10, 2, 3, 2.0, 0.0, 9);
  EXPECT_EQ(CheckEnoughLabels(d, 3), "");  // 4, 3, 3
  EXPECT_NE(CheckEnoughLabels(d, 4), "");
  d.y.setZero();
  for (Eigen::Index i = 0; i < d.y.cols(); ++i) d.y(0, i) = 1;
  const auto why = CheckEnoughLabels(d, 1);
  EXPECT_NE(why.find("at least 2 classes"), std::string::npos) << why;
  EXPECT_NE(why.find("c0=10"), std::string::npos) << why;
}

TEST(ModelFormat, JsonRoundTripPredictsTheSame) {
  const Dataset d = Blobs(400, 6, 3, 2.0, 0.05, 10);
  auto spec = Spec(ModelKind::kMlp, 5);
  const auto out = Train(d, spec, {});
  const auto j = ModelToJson(out.model);
  EXPECT_EQ(j["format"], "labelloop.model.v1");
  EXPECT_EQ(j["layers"][0]["weights"].size(), 64u);
  EXPECT_EQ(j["layers"][0]["weights"][0].size(), 6u);
  EXPECT_EQ(j["layers"][1]["activation"], "softmax");
  std::string error;
  const auto back = ModelFromJson(nlohmann::json::parse(j.dump()), &error);
  ASSERT_TRUE(back) << error;
  const Eigen::MatrixXf p1 = PredictProbabilities(out.model, d.x);
  const Eigen::MatrixXf p2 = PredictProbabilities(*back, d.x);
  EXPECT_TRUE(p1 == p2);
  // Applying the documented recipe by hand gives the same probabilities.
  Eigen::VectorXf h = d.x.col(0);
  for (Eigen::Index f = 0; f < h.size(); ++f) {
    const float s = j["standardization"]["std"][f].get<float>();
    h(f) = (h(f) - j["standardization"]["mean"][f].get<float>()) / (s == 0 ? 1.0f : s);
  }
  for (const auto& layer : j["layers"]) {
    Eigen::VectorXf z(static_cast<Eigen::Index>(layer["bias"].size()));
    for (Eigen::Index r = 0; r < z.size(); ++r) {
      float acc = layer["bias"][r].get<float>();
      for (Eigen::Index c = 0; c < h.size(); ++c) acc += layer["weights"][r][c].get<float>() * h(c);
      z(r) = acc;
    }
    if (layer["activation"] == "relu") z = z.cwiseMax(0.0f);
    if (layer["activation"] == "softmax") {
      z = (z.array() - z.maxCoeff()).exp();
      z /= z.sum();
    }
    h = z;
  }
  for (Eigen::Index c = 0; c < h.size(); ++c) EXPECT_NEAR(h(c), p1(c, 0), 1e-5);
  auto bad = j;
  bad["layers"][1]["bias"] = {1.0};
  EXPECT_FALSE(ModelFromJson(bad, &error));
  EXPECT_NE(error.find("bias"), std::string::npos);
}

}  // namespace
}  // namespace labelloop::training
