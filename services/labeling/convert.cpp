#include "services/labeling/convert.hpp"

namespace labelloop::labeling {

grpc::Status ToStatus(const Error& error) {
  switch (error.kind) {
    case ErrorKind::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, error.message};
    case ErrorKind::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, error.message};
    case ErrorKind::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, error.message};
    case ErrorKind::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, error.message};
    case ErrorKind::kInternal:
      break;
  }
  return {grpc::StatusCode::INTERNAL, error.message};
}

void SetTimestamp(int64_t micros, google::protobuf::Timestamp* ts) {
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    seconds -= 1;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(rest * 1000));
}

int64_t MicrosOf(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

void ToProto(const storage::ProjectRecord& p, v1::Project* out) {
  out->set_id(p.id);
  out->set_name(p.name);
  out->set_instructions(p.instructions);
  out->set_data_kind(p.data_kind);
  out->mutable_schema()->set_kind(LabelKindName(p.schema.kind));
  for (const auto& c : p.schema.classes) out->mutable_schema()->add_classes(c);
  out->set_judgements_per_item(p.judgements_per_item);
  out->set_validators_json(p.validators_json);
  out->set_settings_json(p.settings_json);
  out->set_status(p.status);
  out->set_created_by(p.created_by);
  SetTimestamp(p.created_at_us, out->mutable_created_at());
  SetTimestamp(p.updated_at_us, out->mutable_updated_at());
  out->set_feature_dim(p.feature_dim);
}

void ToProto(const storage::LeaseRecord& l, v1::Lease* out) {
  out->set_item_id(l.item_id);
  out->set_token(l.token);
  out->set_annotator(l.annotator);
  SetTimestamp(l.claimed_at_us, out->mutable_claimed_at());
  SetTimestamp(l.expires_at_us, out->mutable_expires_at());
}

void ToProto(const storage::ItemRecord& item, v1::Item* out) {
  out->set_id(item.id);
  out->set_project_id(item.project_id);
  out->set_external_id(item.external_id);
  if (item.sample_ts_us) SetTimestamp(*item.sample_ts_us, out->mutable_sample_ts());
  out->set_status(item.status);
  out->set_judgements(item.judgements);
  for (const auto& c : item.consensus) out->add_consensus(c);
  out->set_consensus_tie(item.consensus_tie);
  SetTimestamp(item.created_at_us, out->mutable_created_at());
  out->set_text(item.text);
  out->set_row_json(item.row_json);
  out->set_image(item.image);
  out->set_image_format(item.image_format);
  for (const auto& l : item.labels) {
    auto* pl = out->add_labels();
    pl->set_annotator(l.annotator);
    for (const auto& c : l.classes) pl->add_classes(c);
    pl->set_seconds_spent(l.seconds_spent);
    SetTimestamp(l.created_at_us, pl->mutable_created_at());
    SetTimestamp(l.updated_at_us, pl->mutable_updated_at());
  }
}

void ToProto(const storage::SubmitResult& r, v1::SubmitLabelResponse* out) {
  out->set_item_id(r.item_id);
  out->set_item_status(r.item_status);
  out->set_judgements(r.judgements);
  for (const auto& c : r.consensus) out->add_consensus(c);
  out->set_consensus_tie(r.consensus_tie);
  out->set_relabeled(r.relabeled);
}

void ToProto(int64_t project_id, const storage::StatsRecord& s, v1::ProjectStats* out) {
  out->set_project_id(project_id);
  out->set_total(s.total);
  out->set_labeled(s.labeled);
  out->set_unlabeled(s.total - s.labeled);
  out->set_under_lease(s.under_lease);
  out->set_ties(s.ties);
  out->set_labels_last_hour(s.labels_last_hour);
  for (const auto& [name, count] : s.per_class) {
    auto* c = out->add_per_class();
    c->set_class_name(name);
    c->set_items(count);
  }
  for (const auto& a : s.per_annotator) {
    auto* pa = out->add_per_annotator();
    pa->set_annotator(a.annotator);
    pa->set_labels(a.labels);
    pa->set_median_seconds(a.median_seconds);
  }
  for (const auto& p : s.pairs) {
    auto* pp = out->add_pair_agreement();
    pp->set_annotator_a(p.annotator_a);
    pp->set_annotator_b(p.annotator_b);
    pp->set_items(p.items);
    pp->set_cohen_kappa(p.kappa);
  }
  if (s.fleiss_kappa) out->set_fleiss_kappa(*s.fleiss_kappa);
}

}  // namespace labelloop::labeling
