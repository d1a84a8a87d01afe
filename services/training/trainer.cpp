#include "services/training/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

namespace labelloop::training {
namespace {

struct Split {
  std::vector<int> train;
  std::vector<int> val;
};

// Stratified for single-label data (each class keeps at least one training item),
// a plain shuffle for multi-label data.
Split MakeSplit(const Dataset& d, double fraction, std::mt19937_64& rng) {
  Split s;
  const int n = static_cast<int>(d.x.cols());
  auto take = [&](std::vector<int>& idx) {
    Shuffle(idx, rng);
    auto nv = static_cast<size_t>(std::llround(fraction * static_cast<double>(idx.size())));
    if (!idx.empty()) nv = std::min(nv, idx.size() - 1);
    s.val.insert(s.val.end(), idx.begin(), idx.begin() + static_cast<long>(nv));
    s.train.insert(s.train.end(), idx.begin() + static_cast<long>(nv), idx.end());
  };
  if (d.multi_label) {
    std::vector<int> all(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    take(all);
  } else {
    std::vector<std::vector<int>> per_class(d.classes.size());
    for (int i = 0; i < n; ++i) per_class[static_cast<size_t>(d.label[i])].push_back(i);
    for (auto& idx : per_class) take(idx);
  }
  return s;
}

struct Eval {
  double loss = 0;
  double accuracy = 0;
};

// Loss (with the same weights as training) and accuracy of probabilities p.
Eval Score(const Dataset& d, const Eigen::MatrixXf& p, const std::vector<int>& idx,
           const Eigen::VectorXf& sample_weight, const Eigen::VectorXf& pos_weight) {
  Eval e;
  if (idx.empty()) return e;
  constexpr double kTiny = 1e-7;
  double loss = 0, right = 0;
  for (size_t j = 0; j < idx.size(); ++j) {
    const int i = idx[j];
    const auto col = static_cast<Eigen::Index>(j);
    if (!d.multi_label) {
      const int y = d.label[static_cast<size_t>(i)];
      loss -= sample_weight(i) * std::log(std::max<double>(p(y, col), kTiny));
      Eigen::Index best = 0;
      p.col(col).maxCoeff(&best);
      right += best == y;
    } else {
      for (Eigen::Index c = 0; c < p.rows(); ++c) {
        const double t = d.y(c, i);
        const double q = std::clamp<double>(p(c, col), kTiny, 1 - kTiny);
        loss -= pos_weight(c) * t * std::log(q) + (1 - t) * std::log(1 - q);
        right += (q >= 0.5) == (t > 0.5);
      }
    }
  }
  const double n = static_cast<double>(idx.size());
  e.loss = loss / n;
  e.accuracy = right / (d.multi_label ? n * static_cast<double>(p.rows()) : n);
  return e;
}

Eigen::MatrixXf Columns(const Eigen::MatrixXf& m, const std::vector<int>& idx, size_t from,
                        size_t to) {
  Eigen::MatrixXf out(m.rows(), static_cast<Eigen::Index>(to - from));
  for (size_t j = from; j < to; ++j) out.col(static_cast<Eigen::Index>(j - from)) = m.col(idx[j]);
  return out;
}

// Probabilities for the items idx, in chunks so memory stays small.
Eigen::MatrixXf ForwardAll(const Network<float>& net, const Eigen::MatrixXf& xs,
                           const std::vector<int>& idx) {
  const auto k = net.layers().back().w.rows();
  Eigen::MatrixXf p(k, static_cast<Eigen::Index>(idx.size()));
  constexpr size_t kChunk = 4096;
  for (size_t s = 0; s < idx.size(); s += kChunk) {
    const size_t e = std::min(idx.size(), s + kChunk);
    p.middleCols(static_cast<Eigen::Index>(s), static_cast<Eigen::Index>(e - s)) =
        net.Forward(Columns(xs, idx, s, e));
  }
  return p;
}

struct AdamState {
  std::vector<Eigen::ArrayXXf> mw, vw;
  std::vector<Eigen::ArrayXf> mb, vb;
};

}  // namespace

std::vector<int64_t> ClassCounts(const Dataset& d) {
  std::vector<int64_t> counts(d.classes.size(), 0);
  for (Eigen::Index i = 0; i < d.y.cols(); ++i) {
    for (Eigen::Index c = 0; c < d.y.rows(); ++c)
      counts[static_cast<size_t>(c)] += d.y(c, i) > 0.5f;
  }
  return counts;
}

std::string CheckEnoughLabels(const Dataset& d, int min_per_class) {
  const auto counts = ClassCounts(d);
  int usable = 0;
  std::string summary;
  for (size_t c = 0; c < counts.size(); ++c) {
    usable += counts[c] >= min_per_class;
    if (!summary.empty()) summary += ", ";
    summary += d.classes[c] + "=" + std::to_string(counts[c]);
  }
  if (usable >= 2) return "";
  return "too few labels to train: need at least 2 classes with at least " +
         std::to_string(min_per_class) +
         " labeled items each (labeled items per class: " + (summary.empty() ? "none" : summary) +
         ")";
}

TrainOutcome Train(const Dataset& d, const ModelSpec& spec, const TrainCallbacks& cb) {
  const auto started = std::chrono::steady_clock::now();
  TrainOutcome out;
  std::mt19937_64 rng(spec.seed);
  const auto dim = d.x.rows();
  const auto k = static_cast<Eigen::Index>(d.classes.size());
  const auto n = d.x.cols();
  Split split = MakeSplit(d, spec.validation_fraction, rng);

  // Standardisation fitted on the training split only (accumulated in double).
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(dim), sq = Eigen::VectorXd::Zero(dim);
  for (int i : split.train) {
    const Eigen::VectorXd v = d.x.col(i).cast<double>();
    sum += v;
    sq += v.cwiseProduct(v);
  }
  const double nt = std::max<double>(1.0, static_cast<double>(split.train.size()));
  const Eigen::VectorXd mean = sum / nt;
  const Eigen::VectorXd var = (sq / nt - mean.cwiseProduct(mean)).cwiseMax(0.0);
  PortableModel& model = out.model;
  model.spec = spec;
  model.multi_label = d.multi_label;
  model.classes = d.classes;
  model.feature_dim = static_cast<int>(dim);
  model.mean = mean.cast<float>();
  model.std = var.cwiseSqrt().unaryExpr([](double s) { return s < 1e-12 ? 0.0 : s; }).cast<float>();
  const Eigen::MatrixXf xs = Standardize(model, d.x);

  // Class weighting: per-sample weights (single-label) or positive-term weights (multi).
  Eigen::VectorXf sample_weight = Eigen::VectorXf::Ones(n);
  Eigen::VectorXf pos_weight = Eigen::VectorXf::Ones(k);
  if (spec.class_weighting == Weighting::kBalanced) {
    std::vector<double> count(static_cast<size_t>(k), 0);
    for (int i : split.train) {
      for (Eigen::Index c = 0; c < k; ++c) count[static_cast<size_t>(c)] += d.y(c, i) > 0.5f;
    }
    if (!d.multi_label) {
      const double present = static_cast<double>(
          std::count_if(count.begin(), count.end(), [](double c) { return c > 0; }));
      for (Eigen::Index i = 0; i < n; ++i) {
        const double c = count[static_cast<size_t>(d.label[static_cast<size_t>(i)])];
        sample_weight(i) = c > 0 ? static_cast<float>(nt / (present * c)) : 1.0f;
      }
    } else {
      for (Eigen::Index c = 0; c < k; ++c) {
        const double pos = count[static_cast<size_t>(c)];
        pos_weight(c) = pos > 0 ? static_cast<float>(std::max(1.0, (nt - pos) / pos)) : 1.0f;
      }
    }
  }

  Network<float> net(static_cast<int>(dim), spec.hidden_units, static_cast<int>(k), d.multi_label,
                     rng);
  AdamState adam;
  for (const auto& layer : net.layers()) {
    adam.mw.push_back(Eigen::ArrayXXf::Zero(layer.w.rows(), layer.w.cols()));
    adam.vw.push_back(Eigen::ArrayXXf::Zero(layer.w.rows(), layer.w.cols()));
    adam.mb.push_back(Eigen::ArrayXf::Zero(layer.b.size()));
    adam.vb.push_back(Eigen::ArrayXf::Zero(layer.b.size()));
  }
  constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  const auto l2 = static_cast<float>(spec.l2);
  std::vector<Layer<float>> grads;
  Eigen::MatrixXf probs;
  int64_t step = 0;
  Network<float> best = net;
  double best_val = std::numeric_limits<double>::infinity();
  int bad_epochs = 0;
  const bool can_stop_early = spec.early_stopping_patience > 0 && !split.val.empty();
  std::vector<int> order = split.train;
  const size_t batch = static_cast<size_t>(spec.batch_size);

  for (int epoch = 1; epoch <= spec.epochs; ++epoch) {
    Shuffle(order, rng);
    double loss_sum = 0, right = 0;
    for (size_t s = 0; s < order.size(); s += batch) {
      if (cb.should_stop && cb.should_stop()) {
        out.stopped = true;
        return out;
      }
      const size_t e = std::min(order.size(), s + batch);
      const Eigen::MatrixXf xb = Columns(xs, order, s, e);
      const Eigen::MatrixXf yb = Columns(d.y, order, s, e);
      Eigen::VectorXf swb(static_cast<Eigen::Index>(e - s));
      for (size_t j = s; j < e; ++j)
        swb(static_cast<Eigen::Index>(j - s)) = sample_weight(order[j]);
      float data_loss = 0;
      net.LossAndGradient(xb, yb, swb, pos_weight, l2, &grads, &data_loss, &probs);
      loss_sum += static_cast<double>(data_loss) * static_cast<double>(e - s);
      if (!d.multi_label) {
        for (Eigen::Index j = 0; j < probs.cols(); ++j) {
          Eigen::Index best_c = 0;
          probs.col(j).maxCoeff(&best_c);
          right += best_c == d.label[static_cast<size_t>(order[s + static_cast<size_t>(j)])];
        }
      } else {
        right += ((probs.array() >= 0.5f) == (yb.array() > 0.5f)).cast<double>().sum() /
                 static_cast<double>(k);
      }
      ++step;
      const auto lr = static_cast<float>(
          spec.learning_rate * std::sqrt(1 - std::pow(kBeta2, static_cast<double>(step))) /
          (1 - std::pow(kBeta1, static_cast<double>(step))));
      for (size_t l = 0; l < net.layers().size(); ++l) {
        auto& layer = net.layers()[l];
        const auto& g = grads[l];
        adam.mw[l] = kBeta1 * adam.mw[l] + (1 - kBeta1) * g.w.array();
        adam.vw[l] = kBeta2 * adam.vw[l] + (1 - kBeta2) * g.w.array().square();
        layer.w.array() -= lr * adam.mw[l] / (adam.vw[l].sqrt() + static_cast<float>(kEps));
        adam.mb[l] = kBeta1 * adam.mb[l] + (1 - kBeta1) * g.b.array();
        adam.vb[l] = kBeta2 * adam.vb[l] + (1 - kBeta2) * g.b.array().square();
        layer.b.array() -= lr * adam.mb[l] / (adam.vb[l].sqrt() + static_cast<float>(kEps));
      }
    }
    EpochStats st;
    st.epoch = epoch;
    const double nn = std::max<double>(1.0, static_cast<double>(order.size()));
    st.train_loss = loss_sum / nn;
    st.train_accuracy = right / nn;
    if (!split.val.empty()) {
      const Eval v = Score(d, ForwardAll(net, xs, split.val), split.val, sample_weight, pos_weight);
      st.val_loss = v.loss;
      st.val_accuracy = v.accuracy;
    }
    out.history.push_back(st);
    model.metrics.epochs_run = epoch;
    if (cb.on_epoch) cb.on_epoch(st);
    if (can_stop_early) {
      if (st.val_loss < best_val - 1e-6) {
        best_val = st.val_loss;
        best = net;
        bad_epochs = 0;
      } else if (++bad_epochs >= spec.early_stopping_patience) {
        model.metrics.early_stopped = true;
        break;
      }
    }
  }
  if (can_stop_early) net = best;  // the weights of the best validation epoch

  // Final metrics on the validation split (the training split when there is none).
  const std::vector<int>& eval = split.val.empty() ? split.train : split.val;
  const Eigen::MatrixXf p = ForwardAll(net, xs, eval);
  const int epochs_run = model.metrics.epochs_run;
  const bool early = model.metrics.early_stopped;
  if (!d.multi_label) {
    std::vector<int> truth, pred;
    for (size_t j = 0; j < eval.size(); ++j) {
      truth.push_back(d.label[static_cast<size_t>(eval[j])]);
      Eigen::Index b = 0;
      p.col(static_cast<Eigen::Index>(j)).maxCoeff(&b);
      pred.push_back(static_cast<int>(b));
    }
    model.metrics = SingleLabelMetrics(truth, pred, d.classes);
  } else {
    model.metrics = MultiLabelMetrics(Columns(d.y, eval, 0, eval.size()), p, d.classes);
  }
  model.metrics.evaluated_on = split.val.empty() ? "training" : "validation";
  model.metrics.epochs_run = epochs_run;
  model.metrics.early_stopped = early;
  model.metrics.labeled_items = n;
  model.metrics.train_items = static_cast<int64_t>(split.train.size());
  model.metrics.validation_items = static_cast<int64_t>(split.val.size());
  model.net = std::move(net);
  model.metrics.training_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return out;
}

}  // namespace labelloop::training
