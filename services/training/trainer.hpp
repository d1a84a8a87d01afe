// Training on an in-memory data set: the validation split, standardisation fitted on the
// training split, class weighting, mini-batch Adam, early stopping and the final
// metrics. Plain C++ and Eigen; deterministic for a given seed and data (its own
// shuffles on std::mt19937_64, single-threaded Eigen).
#pragma once

#include <Eigen/Dense>
#include <functional>
#include <string>
#include <vector>

#include "services/training/model_format.hpp"

namespace labelloop::training {

struct Dataset {
  bool multi_label = false;
  std::vector<std::string> classes;
  Eigen::MatrixXf x;       // features x items
  Eigen::MatrixXf y;       // classes x items, one-hot (single-label) or multi-hot
  std::vector<int> label;  // single-label: the class index of each item
};

struct EpochStats {
  int epoch = 0;  // 1-based
  double train_loss = 0;
  double train_accuracy = 0;
  double val_loss = 0;
  double val_accuracy = 0;
};

struct TrainCallbacks {
  // Asked before every batch; true stops training (cancel, lost lease, drain).
  std::function<bool()> should_stop;
  std::function<void(const EpochStats&)> on_epoch;
};

struct TrainOutcome {
  bool stopped = false;  // should_stop said so; model is then incomplete
  PortableModel model;
  std::vector<EpochStats> history;
};

// Items per class (single-label) or positives per class (multi-label).
std::vector<int64_t> ClassCounts(const Dataset& data);

// Empty when the data can train a useful model: at least two classes with at least
// min_per_class labeled items each. Otherwise says what is missing.
std::string CheckEnoughLabels(const Dataset& data, int min_per_class);

TrainOutcome Train(const Dataset& data, const ModelSpec& spec, const TrainCallbacks& callbacks);

}  // namespace labelloop::training
