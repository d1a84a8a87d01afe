// The classifier itself: a stack of dense layers (none hidden = softmax regression,
// 1-2 hidden ReLU layers = MLP) with a softmax (single-label) or sigmoid (multi-label)
// output, its loss and its gradient by backpropagation. Templated on the scalar so the
// gradient check runs in double while training runs in float. Columns are samples.
#pragma once

#include <Eigen/Dense>
#include <cmath>
#include <random>
#include <vector>

namespace labelloop::training {

enum class Activation { kRelu, kSoftmax, kSigmoid };

inline const char* ActivationName(Activation a) {
  switch (a) {
    case Activation::kRelu:
      return "relu";
    case Activation::kSoftmax:
      return "softmax";
    case Activation::kSigmoid:
      return "sigmoid";
  }
  return "relu";
}

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <typename T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

template <typename T>
struct Layer {
  Mat<T> w;  // outputs x inputs
  Vec<T> b;  // outputs
  Activation activation = Activation::kRelu;
};

// A uniform double in [0, 1) from the top 53 bits: the same on every platform,
// unlike std::uniform_real_distribution.
inline double Uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

// An index in [0, n): modulo of a 64-bit draw; the bias is negligible for our n and,
// above all, it is the same everywhere.
inline size_t UniformIndex(std::mt19937_64& rng, size_t n) { return rng() % n; }

template <typename T>
void Shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[UniformIndex(rng, i)]);
}

template <typename T>
class Network {
 public:
  Network() = default;

  // inputs -> hidden... -> outputs. Hidden layers get He-uniform weights; the output
  // layer of softmax regression starts at zero, of an MLP Glorot-uniform.
  Network(int inputs, const std::vector<int>& hidden, int outputs, bool multi_label,
          std::mt19937_64& rng)
      : multi_label_(multi_label) {
    int in = inputs;
    for (int h : hidden) {
      layers_.push_back(MakeLayer(in, h, Activation::kRelu, std::sqrt(6.0 / in), rng));
      in = h;
    }
    const Activation out_act = multi_label ? Activation::kSigmoid : Activation::kSoftmax;
    const double limit = hidden.empty() ? 0.0 : std::sqrt(6.0 / (in + outputs));
    layers_.push_back(MakeLayer(in, outputs, out_act, limit, rng));
  }

  std::vector<Layer<T>>& layers() { return layers_; }
  const std::vector<Layer<T>>& layers() const { return layers_; }
  bool multi_label() const { return multi_label_; }
  void set_multi_label(bool m) { multi_label_ = m; }

  // Probabilities (outputs x n) for standardized inputs x (inputs x n).
  Mat<T> Forward(const Eigen::Ref<const Mat<T>>& x) const {
    Mat<T> h;
    for (size_t l = 0; l < layers_.size(); ++l) {
      Mat<T> z;
      if (l == 0) {
        z.noalias() = layers_[l].w * x;
      } else {
        z.noalias() = layers_[l].w * h;
      }
      z.colwise() += layers_[l].b;
      Activate(layers_[l].activation, z);
      h = std::move(z);
    }
    return h;
  }

  // The batch objective: mean over the batch of the weighted cross-entropy plus
  // l2/2 * sum of squared weights (biases are not penalised). Fills `grads` (same shapes
  // as the layers) and returns the data loss (without the L2 term) in *data_loss.
  //   y: targets (outputs x n), one-hot or multi-hot.
  //   sample_weight: single-label, per-sample weight (class weighting); size n.
  //   pos_weight: multi-label, per-class weight of the positive term; size outputs.
  //   probs: when not null, receives the output probabilities.
  T LossAndGradient(const Mat<T>& x, const Mat<T>& y, const Vec<T>& sample_weight,
                    const Vec<T>& pos_weight, T l2, std::vector<Layer<T>>* grads, T* data_loss,
                    Mat<T>* probs = nullptr) const {
    using Row = Eigen::Array<T, 1, Eigen::Dynamic>;
    const size_t depth = layers_.size();
    // acts[l] = output of layer l; the input of layer l is x for l = 0, else acts[l - 1].
    std::vector<Mat<T>> acts(depth);
    auto input = [&](size_t l) -> const Mat<T>& { return l == 0 ? x : acts[l - 1]; };
    for (size_t l = 0; l + 1 < depth; ++l) {
      acts[l].noalias() = layers_[l].w * input(l);
      acts[l].colwise() += layers_[l].b;
      Activate(layers_[l].activation, acts[l]);
    }
    Mat<T> logits;
    logits.noalias() = layers_[depth - 1].w * input(depth - 1);
    logits.colwise() += layers_[depth - 1].b;
    const auto n = static_cast<T>(x.cols());
    const Row sw =
        sample_weight.size() ? Row(sample_weight.transpose().array()) : Row::Ones(x.cols());
    T loss = 0;
    Mat<T>& p = acts[depth - 1];
    Mat<T> dz;
    if (!multi_label_) {
      // Softmax and cross-entropy from the logits: -log p_y = logsumexp(z) - z_y.
      const Row m = logits.colwise().maxCoeff().array();
      p = (logits.array().rowwise() - m).exp().matrix();
      const Row sum = p.colwise().sum().array();
      p.array().rowwise() /= sum;
      const Row lse = m + sum.log();
      const Row zy = (logits.array() * y.array()).colwise().sum();
      loss = (sw * (lse - zy)).sum();
      dz = ((p - y).array().rowwise() * (sw / n)).matrix();
    } else {
      const auto z = logits.array();
      const auto softplus_pos = z.max(T(0)) + (-z.abs()).exp().log1p();     // softplus(z)
      const auto softplus_neg = (-z).max(T(0)) + (-z.abs()).exp().log1p();  // softplus(-z)
      Mat<T> a = Mat<T>::Ones(logits.rows(), logits.cols());
      if (pos_weight.size()) a.colwise() = pos_weight;
      const auto at = a.array() * y.array();
      loss = (at * softplus_neg + (T(1) - y.array()) * softplus_pos).sum();
      p = (T(1) / (T(1) + (-z).exp())).matrix();
      dz = ((p.array() * (at + T(1) - y.array()) - at) / n).matrix();
    }
    loss /= n;
    if (data_loss) *data_loss = loss;
    T penalty = 0;
    for (const auto& layer : layers_) penalty += layer.w.squaredNorm();
    grads->resize(depth);
    for (size_t l = depth; l-- > 0;) {
      auto& g = (*grads)[l];
      g.activation = layers_[l].activation;
      g.w.noalias() = dz * input(l).transpose();
      g.w += l2 * layers_[l].w;
      g.b = dz.rowwise().sum();
      if (l > 0) {
        Mat<T> dh;
        dh.noalias() = layers_[l].w.transpose() * dz;
        dz = (acts[l - 1].array() > T(0)).select(dh, T(0));  // ReLU
      }
    }
    if (probs) *probs = std::move(p);
    return loss + l2 / 2 * penalty;
  }

 private:
  static void Activate(Activation act, Mat<T>& z) {
    switch (act) {
      case Activation::kRelu:
        z = z.cwiseMax(T(0));
        break;
      case Activation::kSigmoid:
        z = (T(1) / (T(1) + (-z.array()).exp())).matrix();
        break;
      case Activation::kSoftmax: {
        const Eigen::Array<T, 1, Eigen::Dynamic> m = z.colwise().maxCoeff().array();
        z = (z.array().rowwise() - m).exp().matrix();
        const Eigen::Array<T, 1, Eigen::Dynamic> sum = z.colwise().sum().array();
        z.array().rowwise() /= sum;
        break;
      }
    }
  }

  static Layer<T> MakeLayer(int in, int out, Activation act, double limit, std::mt19937_64& rng) {
    Layer<T> layer;
    layer.activation = act;
    layer.w.resize(out, in);
    // Filled in a fixed (row-major) order so the draw sequence never depends on storage.
    for (int r = 0; r < out; ++r) {
      for (int c = 0; c < in; ++c) {
        layer.w(r, c) = static_cast<T>((2 * Uniform01(rng) - 1) * limit);
      }
    }
    layer.b = Vec<T>::Zero(out);
    return layer;
  }

  std::vector<Layer<T>> layers_;
  bool multi_label_ = false;
};

}  // namespace labelloop::training
