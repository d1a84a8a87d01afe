// Evaluation of a classifier: accuracy, per-class and macro precision/recall/F1 and the
// confusion matrix, computed from predictions, and their JSON form (models.metrics).
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace labelloop::training {

struct ClassMetric {
  std::string name;
  double precision = 0;
  double recall = 0;
  double f1 = 0;
  int64_t support = 0;
};

struct Metrics {
  std::string evaluated_on = "validation";
  double accuracy = 0;
  double macro_precision = 0;
  double macro_recall = 0;
  double macro_f1 = 0;
  std::vector<ClassMetric> per_class;
  // Single-label: [true][predicted]. Multi-label: per class [tn, fp, fn, tp].
  std::vector<std::vector<int64_t>> confusion;
  int64_t labeled_items = 0;
  int64_t train_items = 0;
  int64_t validation_items = 0;
  double training_seconds = 0;
  int epochs_run = 0;
  bool early_stopped = false;
};

// Single-label: truth/predicted are class indices. Precision of a class never
// predicted and recall of a class without support are 0 (scikit-learn's
// zero_division=0); the macro averages run over the classes that occur in the truth
// or the predictions (scikit-learn's default label set).
Metrics SingleLabelMetrics(const std::vector<int>& truth, const std::vector<int>& predicted,
                           const std::vector<std::string>& classes);

// Multi-label: truth (classes x n, 0/1) against probabilities thresholded at 0.5.
// Accuracy is the share of (item, class) decisions that are right.
Metrics MultiLabelMetrics(const Eigen::MatrixXf& truth, const Eigen::MatrixXf& probabilities,
                          const std::vector<std::string>& classes);

nlohmann::json MetricsToJson(const Metrics& m);
Metrics MetricsFromJson(const nlohmann::json& j);

}  // namespace labelloop::training
