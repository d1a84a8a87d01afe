// Synthetic data sets for the unit tests: Gaussian blobs around class centres.
#pragma once

#include <cmath>
#include <random>

#include "services/training/trainer.hpp"

namespace labelloop::training::testdata {

inline double Gaussian(std::mt19937_64& rng) {
  const double u1 = std::max(Uniform01(rng), 1e-300);
  const double u2 = Uniform01(rng);
  return std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// n items of dim features in k classes; centres spread `separation` apart, unit noise;
// `flip` of the labels replaced by a random class (label noise).
inline Dataset Blobs(int n, int dim, int k, double separation, double flip, uint64_t seed,
                     bool multi_label = false) {
  std::mt19937_64 rng(seed);
  Eigen::MatrixXf centres(dim, k);
  for (int c = 0; c < k; ++c) {
    for (int f = 0; f < dim; ++f) centres(f, c) = static_cast<float>(Gaussian(rng) * separation);
  }
  Dataset d;
  d.multi_label = multi_label;
  for (int c = 0; c < k; ++c) d.classes.push_back("c" + std::to_string(c));
  d.x.resize(dim, n);
  d.y = Eigen::MatrixXf::Zero(k, n);
  for (int i = 0; i < n; ++i) {
    const int c = i % k;
    for (int f = 0; f < dim; ++f) {
      d.x(f, i) = centres(f, c) + static_cast<float>(Gaussian(rng)) + 3.0f;  // off-centre
    }
    int label = c;
    if (Uniform01(rng) < flip) label = static_cast<int>(UniformIndex(rng, static_cast<size_t>(k)));
    d.label.push_back(label);
    d.y(label, i) = 1;
    if (multi_label && c % 2 == 0) d.y((c + 1) % k, i) = 1;  // even classes bring the next one
  }
  return d;
}

}  // namespace labelloop::training::testdata
