// Backpropagation against central finite differences, in double precision.
#include <gtest/gtest.h>

#include "services/training/network.hpp"

namespace labelloop::training {
namespace {

struct Case {
  std::vector<int> hidden;
  bool multi_label;
};

class GradientCheck : public ::testing::TestWithParam<Case> {};

TEST_P(GradientCheck, MatchesFiniteDifferences) {
  const auto& param = GetParam();
  std::mt19937_64 rng(11);
  const int in = 5, k = 4, n = 7;
  Network<double> net(in, param.hidden, k, param.multi_label, rng);
  // Non-zero output weights and biases so every term of the gradient is exercised.
  for (auto& layer : net.layers()) {
    for (Eigen::Index i = 0; i < layer.w.size(); ++i) layer.w.data()[i] = Uniform01(rng) - 0.5;
    for (Eigen::Index i = 0; i < layer.b.size(); ++i) layer.b(i) = Uniform01(rng) - 0.5;
  }
  Mat<double> x(in, n);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = 2 * Uniform01(rng) - 1;
  Mat<double> y = Mat<double>::Zero(k, n);
  Vec<double> sw(n), pw(k);
  for (int i = 0; i < n; ++i) {
    y(static_cast<Eigen::Index>(UniformIndex(rng, k)), i) = 1;
    if (param.multi_label) y(static_cast<Eigen::Index>(UniformIndex(rng, k)), i) = 1;
    sw(i) = 0.5 + Uniform01(rng);
  }
  for (int c = 0; c < k; ++c) pw(c) = 1 + 2 * Uniform01(rng);
  const double l2 = 0.03;
  std::vector<Layer<double>> grads, scratch;
  double data_loss = 0;
  net.LossAndGradient(x, y, sw, pw, l2, &grads, &data_loss);
  const double h = 1e-6;
  int checked = 0;
  for (size_t l = 0; l < net.layers().size(); ++l) {
    auto check = [&](double& param_ref, double analytic) {
      const double saved = param_ref;
      param_ref = saved + h;
      const double up = net.LossAndGradient(x, y, sw, pw, l2, &scratch, nullptr);
      param_ref = saved - h;
      const double down = net.LossAndGradient(x, y, sw, pw, l2, &scratch, nullptr);
      param_ref = saved;
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << "layer " << l;
      ++checked;
    };
    auto& layer = net.layers()[l];
    for (Eigen::Index i = 0; i < layer.w.size(); ++i)
      check(layer.w.data()[i], grads[l].w.data()[i]);
    for (Eigen::Index i = 0; i < layer.b.size(); ++i) check(layer.b.data()[i], grads[l].b(i));
  }
  EXPECT_GT(checked, 20);
}

INSTANTIATE_TEST_SUITE_P(Models, GradientCheck,
                         ::testing::Values(Case{{}, false}, Case{{6}, false}, Case{{6, 3}, false},
                                           Case{{}, true}, Case{{6}, true}));

}  // namespace
}  // namespace labelloop::training
