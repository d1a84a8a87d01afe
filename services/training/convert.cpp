#include "services/training/convert.hpp"

namespace labelloop::training {

PartialSpec SpecFromProto(const v1::ModelSpec& p, std::string* error) {
  PartialSpec s;
  switch (p.model_type()) {
    case v1::MODEL_TYPE_UNSPECIFIED:
      break;
    case v1::MODEL_TYPE_SOFTMAX:
      s.model_type = ModelKind::kSoftmax;
      break;
    case v1::MODEL_TYPE_MLP:
      s.model_type = ModelKind::kMlp;
      break;
    default:
      *error = "spec.model_type: unknown value " + std::to_string(p.model_type());
      return s;
  }
  switch (p.class_weighting()) {
    case v1::CLASS_WEIGHTING_UNSPECIFIED:
      break;
    case v1::CLASS_WEIGHTING_NONE:
      s.class_weighting = Weighting::kNone;
      break;
    case v1::CLASS_WEIGHTING_BALANCED:
      s.class_weighting = Weighting::kBalanced;
      break;
    default:
      *error = "spec.class_weighting: unknown value " + std::to_string(p.class_weighting());
      return s;
  }
  if (p.has_epochs()) s.epochs = p.epochs();
  if (p.has_batch_size()) s.batch_size = p.batch_size();
  if (p.has_learning_rate()) s.learning_rate = p.learning_rate();
  if (p.has_l2()) s.l2 = p.l2();
  for (int h : p.hidden_units()) s.hidden_units.push_back(h);
  if (p.has_validation_fraction()) s.validation_fraction = p.validation_fraction();
  if (p.has_early_stopping_patience()) s.early_stopping_patience = p.early_stopping_patience();
  if (p.has_seed()) s.seed = p.seed();
  return s;
}

void SpecToProto(const ModelSpec& s, v1::ModelSpec* out) {
  out->set_model_type(s.model_type == ModelKind::kMlp ? v1::MODEL_TYPE_MLP
                                                      : v1::MODEL_TYPE_SOFTMAX);
  out->set_epochs(s.epochs);
  out->set_batch_size(s.batch_size);
  out->set_learning_rate(s.learning_rate);
  out->set_l2(s.l2);
  out->clear_hidden_units();
  for (int h : s.hidden_units) out->add_hidden_units(h);
  out->set_validation_fraction(s.validation_fraction);
  out->set_class_weighting(s.class_weighting == Weighting::kBalanced ? v1::CLASS_WEIGHTING_BALANCED
                                                                     : v1::CLASS_WEIGHTING_NONE);
  out->set_early_stopping_patience(s.early_stopping_patience);
  out->set_seed(s.seed);
}

void MetricsToProto(const Metrics& m, v1::ModelMetrics* out) {
  out->set_evaluated_on(m.evaluated_on);
  out->set_accuracy(m.accuracy);
  out->set_macro_precision(m.macro_precision);
  out->set_macro_recall(m.macro_recall);
  out->set_macro_f1(m.macro_f1);
  for (const auto& c : m.per_class) {
    auto* pc = out->add_per_class();
    pc->set_class_name(c.name);
    pc->set_precision(c.precision);
    pc->set_recall(c.recall);
    pc->set_f1(c.f1);
    pc->set_support(c.support);
  }
  for (const auto& row : m.confusion) {
    auto* r = out->add_confusion();
    for (auto v : row) r->add_counts(v);
  }
  out->set_labeled_items(m.labeled_items);
  out->set_train_items(m.train_items);
  out->set_validation_items(m.validation_items);
  out->set_training_seconds(m.training_seconds);
  out->set_epochs_run(m.epochs_run);
  out->set_early_stopped(m.early_stopped);
}

void EpochToProto(const EpochStats& e, v1::EpochMetrics* out) {
  out->set_epoch(e.epoch);
  out->set_train_loss(e.train_loss);
  out->set_train_accuracy(e.train_accuracy);
  out->set_val_loss(e.val_loss);
  out->set_val_accuracy(e.val_accuracy);
}

void ModelToProto(const PortableModel& m, v1::Model* out) {
  out->set_format(kModelFormat);
  out->set_model_type(ModelKindName(m.spec.model_type));
  out->set_multi_label(m.multi_label);
  for (const auto& c : m.classes) out->add_classes(c);
  out->set_feature_dim(m.feature_dim);
  auto* st = out->mutable_standardization();
  for (Eigen::Index i = 0; i < m.mean.size(); ++i) st->add_mean(m.mean(i));
  for (Eigen::Index i = 0; i < m.std.size(); ++i) st->add_std(m.std(i));
  for (const auto& layer : m.net.layers()) {
    auto* l = out->add_layers();
    l->set_inputs(static_cast<int>(layer.w.cols()));
    l->set_outputs(static_cast<int>(layer.w.rows()));
    l->mutable_weights()->Reserve(static_cast<int>(layer.w.size()));
    for (Eigen::Index r = 0; r < layer.w.rows(); ++r) {
      for (Eigen::Index c = 0; c < layer.w.cols(); ++c) l->add_weights(layer.w(r, c));
    }
    for (Eigen::Index r = 0; r < layer.b.size(); ++r) l->add_bias(layer.b(r));
    l->set_activation(ActivationName(layer.activation));
  }
  SpecToProto(m.spec, out->mutable_spec());
  MetricsToProto(m.metrics, out->mutable_metrics());
}

v1::TrainingJobState StateToProto(const std::string& s) {
  if (s == "PENDING") return v1::TRAINING_JOB_STATE_PENDING;
  if (s == "RUNNING") return v1::TRAINING_JOB_STATE_RUNNING;
  if (s == "SUCCEEDED") return v1::TRAINING_JOB_STATE_SUCCEEDED;
  if (s == "FAILED") return v1::TRAINING_JOB_STATE_FAILED;
  if (s == "CANCELLED") return v1::TRAINING_JOB_STATE_CANCELLED;
  return v1::TRAINING_JOB_STATE_UNSPECIFIED;
}

void JobToProto(const storage::JobRow& j, v1::TrainingJob* out) {
  out->set_job_id(j.id);
  out->set_project_id(j.project_id);
  out->set_state(StateToProto(j.state));
  out->set_epoch(j.epoch);
  out->set_epochs(j.epochs);
  out->set_attempts(j.attempts);
  out->set_max_attempts(j.max_attempts);
  out->set_message(j.message);
  out->set_model_id(j.model_id);
  out->set_trigger(j.trigger);
  out->set_cancel_requested(j.cancel_requested);
  auto spec = SpecFromJson(j.spec);
  if (spec.ok()) SpecToProto(spec.spec, out->mutable_spec());
  if (j.created_at) out->mutable_created_at()->set_seconds(j.created_at);
  if (j.started_at) out->mutable_started_at()->set_seconds(j.started_at);
  if (j.finished_at) out->mutable_finished_at()->set_seconds(j.finished_at);
}

void ModelRowToProto(const storage::ModelRow& m, v1::ModelInfo* out) {
  out->set_model_id(m.id);
  out->set_project_id(m.project_id);
  out->set_version(m.version);
  out->set_job_id(m.job_id);
  out->set_model_type(m.model_type);
  out->set_multi_label(m.multi_label);
  for (const auto& c : m.classes) out->add_classes(c);
  MetricsToProto(MetricsFromJson(m.metrics), out->mutable_metrics());
  out->set_labeled_items(m.labeled_items);
  out->set_predictions_ready(m.predictions_ready);
  out->mutable_created_at()->set_seconds(m.created_at);
  auto spec = SpecFromJson(m.spec);
  if (spec.ok()) SpecToProto(spec.spec, out->mutable_spec());
}

}  // namespace labelloop::training
