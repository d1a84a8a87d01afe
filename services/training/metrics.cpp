#include "services/training/metrics.hpp"

namespace labelloop::training {
namespace {

double Ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / b : 0.0; }

ClassMetric FromCounts(const std::string& name, int64_t tp, int64_t fp, int64_t fn) {
  ClassMetric c;
  c.name = name;
  c.precision = Ratio(tp, tp + fp);
  c.recall = Ratio(tp, tp + fn);
  c.f1 = c.precision + c.recall > 0 ? 2 * c.precision * c.recall / (c.precision + c.recall) : 0;
  c.support = tp + fn;
  return c;
}

void Macro(Metrics& m, const std::vector<bool>& included) {
  int count = 0;
  for (size_t c = 0; c < m.per_class.size(); ++c) {
    if (!included[c]) continue;
    ++count;
    m.macro_precision += m.per_class[c].precision;
    m.macro_recall += m.per_class[c].recall;
    m.macro_f1 += m.per_class[c].f1;
  }
  if (count > 0) {
    m.macro_precision /= count;
    m.macro_recall /= count;
    m.macro_f1 /= count;
  }
}

}  // namespace

Metrics SingleLabelMetrics(const std::vector<int>& truth, const std::vector<int>& predicted,
                           const std::vector<std::string>& classes) {
  Metrics m;
  const size_t k = classes.size();
  m.confusion.assign(k, std::vector<int64_t>(k, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    ++m.confusion[truth[i]][predicted[i]];
    correct += truth[i] == predicted[i];
  }
  m.accuracy = Ratio(correct, static_cast<int64_t>(truth.size()));
  std::vector<bool> included(k, false);
  for (size_t c = 0; c < k; ++c) {
    int64_t tp = m.confusion[c][c], fp = 0, fn = 0;
    for (size_t o = 0; o < k; ++o) {
      if (o == c) continue;
      fp += m.confusion[o][c];
      fn += m.confusion[c][o];
    }
    m.per_class.push_back(FromCounts(classes[c], tp, fp, fn));
    included[c] = tp + fp + fn > 0;
  }
  Macro(m, included);
  return m;
}

Metrics MultiLabelMetrics(const Eigen::MatrixXf& truth, const Eigen::MatrixXf& probabilities,
                          const std::vector<std::string>& classes) {
  Metrics m;
  const auto k = static_cast<Eigen::Index>(classes.size());
  int64_t right = 0;
  std::vector<bool> included(classes.size(), false);
  for (Eigen::Index c = 0; c < k; ++c) {
    int64_t tn = 0, fp = 0, fn = 0, tp = 0;
    for (Eigen::Index i = 0; i < truth.cols(); ++i) {
      const bool t = truth(c, i) > 0.5f;
      const bool p = probabilities(c, i) >= 0.5f;
      tp += t && p;
      fp += !t && p;
      fn += t && !p;
      tn += !t && !p;
    }
    right += tp + tn;
    m.confusion.push_back({tn, fp, fn, tp});
    m.per_class.push_back(FromCounts(classes[c], tp, fp, fn));
    included[c] = tp + fp + fn > 0;
  }
  m.accuracy = Ratio(right, static_cast<int64_t>(truth.cols()) * k);
  Macro(m, included);
  return m;
}

nlohmann::json MetricsToJson(const Metrics& m) {
  nlohmann::json per_class = nlohmann::json::array();
  for (const auto& c : m.per_class) {
    per_class.push_back({{"class", c.name},
                         {"precision", c.precision},
                         {"recall", c.recall},
                         {"f1", c.f1},
                         {"support", c.support}});
  }
  return {{"evaluated_on", m.evaluated_on},
          {"accuracy", m.accuracy},
          {"macro_precision", m.macro_precision},
          {"macro_recall", m.macro_recall},
          {"macro_f1", m.macro_f1},
          {"per_class", per_class},
          {"confusion", m.confusion},
          {"labeled_items", m.labeled_items},
          {"train_items", m.train_items},
          {"validation_items", m.validation_items},
          {"training_seconds", m.training_seconds},
          {"epochs_run", m.epochs_run},
          {"early_stopped", m.early_stopped}};
}

Metrics MetricsFromJson(const nlohmann::json& j) {
  Metrics m;
  m.evaluated_on = j.value("evaluated_on", "validation");
  m.accuracy = j.value("accuracy", 0.0);
  m.macro_precision = j.value("macro_precision", 0.0);
  m.macro_recall = j.value("macro_recall", 0.0);
  m.macro_f1 = j.value("macro_f1", 0.0);
  if (j.contains("per_class")) {
    for (const auto& c : j.at("per_class")) {
      m.per_class.push_back({c.value("class", ""), c.value("precision", 0.0),
                             c.value("recall", 0.0), c.value("f1", 0.0),
                             c.value("support", int64_t{0})});
    }
  }
  if (j.contains("confusion"))
    m.confusion = j.at("confusion").get<std::vector<std::vector<int64_t>>>();
  m.labeled_items = j.value("labeled_items", int64_t{0});
  m.train_items = j.value("train_items", int64_t{0});
  m.validation_items = j.value("validation_items", int64_t{0});
  m.training_seconds = j.value("training_seconds", 0.0);
  m.epochs_run = j.value("epochs_run", 0);
  m.early_stopped = j.value("early_stopped", false);
  return m;
}

}  // namespace labelloop::training
