#include "services/labeling/project_checks.hpp"

#include "services/labeling/convert.hpp"
#include "services/labeling/domain/claims.hpp"
#include "services/labeling/domain/schema.hpp"
#include "services/labeling/ingest/validators.hpp"

namespace labelloop::labeling {

namespace {

std::vector<std::string> Strings(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return {field.begin(), field.end()};
}

}  // namespace

std::string CheckValidators(const std::string& json) {
  if (auto e = CheckJsonObject("validators_json", json); !e.empty()) return e;
  // What ingestion will enforce must parse now, not fail at the first upload.
  if (auto e = ingest::CheckValidatorConfig(json); !e.empty()) return "validators_json." + e;
  return "";
}

Outcome<storage::NewProject> CheckNewProject(const v1::CreateProjectRequest& req) {
  storage::NewProject p;
  if (auto e = CheckProjectName(req.name()); !e.empty()) return InvalidArgument(e);
  if (auto e = CheckDataKind(req.data_kind()); !e.empty()) return InvalidArgument(e);
  if (!req.has_schema()) return InvalidArgument("schema: required (kind and classes)");
  const auto classes = Strings(req.schema().classes());
  if (auto e = CheckSchema(req.schema().kind(), classes); !e.empty()) return InvalidArgument(e);
  const int k = req.judgements_per_item() == 0 ? 1 : req.judgements_per_item();
  if (auto e = CheckJudgementsPerItem(k); !e.empty()) return InvalidArgument(e);
  p.validators_json = req.validators_json().empty() ? "{}" : req.validators_json();
  if (auto e = CheckValidators(p.validators_json); !e.empty()) return InvalidArgument(e);
  p.settings_json = req.settings_json().empty() ? "{}" : req.settings_json();
  if (auto e = CheckSettings(p.settings_json); !e.empty()) return InvalidArgument(e);
  if (req.instructions().size() > 100000) {
    return InvalidArgument("instructions: at most 100000 characters");
  }
  if (req.created_by().size() > 200) return InvalidArgument("created_by: at most 200 characters");
  p.name = req.name();
  p.instructions = req.instructions();
  p.data_kind = req.data_kind();
  p.schema.kind = *ParseLabelKind(req.schema().kind());
  p.schema.classes = classes;
  p.judgements_per_item = k;
  p.created_by = req.created_by();
  return p;
}

Outcome<storage::ProjectChange> CheckProjectChange(const v1::UpdateProjectRequest& req) {
  storage::ProjectChange ch;
  if (req.has_name()) {
    if (auto e = CheckProjectName(req.name()); !e.empty()) return InvalidArgument(e);
    ch.name = req.name();
  }
  if (req.has_instructions()) {
    if (req.instructions().size() > 100000) {
      return InvalidArgument("instructions: at most 100000 characters");
    }
    ch.instructions = req.instructions();
  }
  if (req.has_schema()) {
    const auto classes = Strings(req.schema().classes());
    if (auto e = CheckSchema(req.schema().kind(), classes); !e.empty()) return InvalidArgument(e);
    ch.schema = LabelSchema{*ParseLabelKind(req.schema().kind()), classes};
  }
  if (req.has_judgements_per_item()) {
    if (auto e = CheckJudgementsPerItem(req.judgements_per_item()); !e.empty()) {
      return InvalidArgument(e);
    }
    ch.judgements_per_item = req.judgements_per_item();
  }
  if (req.has_validators_json()) {
    if (auto e = CheckValidators(req.validators_json()); !e.empty()) return InvalidArgument(e);
    ch.validators_json = req.validators_json();
  }
  if (req.has_settings_json()) {
    if (auto e = CheckSettings(req.settings_json()); !e.empty()) return InvalidArgument(e);
    ch.settings_json = req.settings_json();
  }
  return ch;
}

Outcome<storage::ItemFilter> CheckItemFilter(const v1::ListItemsRequest& req) {
  storage::ItemFilter f;
  if (auto e = CheckId("project_id", req.project_id()); !e.empty()) return InvalidArgument(e);
  f.project_id = req.project_id();
  if (!req.status().empty() && req.status() != "unlabeled" && req.status() != "labeled") {
    return InvalidArgument("status: must be empty, 'unlabeled' or 'labeled' (got '" + req.status() +
                           "')");
  }
  f.status = req.status();
  if (req.class_name().size() > kMaxClassNameLength) {
    return InvalidArgument("class_name: at most 200 characters");
  }
  f.class_name = req.class_name();
  if (!req.annotator().empty()) {
    if (auto e = CheckAnnotator(req.annotator()); !e.empty()) return InvalidArgument(e);
  }
  f.annotator = req.annotator();
  if (req.time_field() != "" && req.time_field() != "created" && req.time_field() != "sample") {
    return InvalidArgument("time_field: must be empty, 'created' or 'sample' (got '" +
                           req.time_field() + "')");
  }
  f.sample_time = req.time_field() == "sample";
  if (req.has_from()) f.from_us = MicrosOf(req.from());
  if (req.has_to()) f.to_us = MicrosOf(req.to());
  if (f.from_us && f.to_us && *f.from_us >= *f.to_us) {
    return InvalidArgument("to: must be after from");
  }
  return f;
}

std::string FilterKey(const storage::ItemFilter& f) {
  auto opt = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "-"; };
  return "items|p=" + std::to_string(f.project_id) + "|s=" + f.status + "|c=" + f.class_name +
         "|a=" + f.annotator + "|f=" + opt(f.from_us) + "|t=" + opt(f.to_us) +
         "|tf=" + (f.sample_time ? "sample" : "created");
}

}  // namespace labelloop::labeling
