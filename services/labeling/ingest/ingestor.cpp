#include "services/labeling/ingest/ingestor.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "services/labeling/ingest/copy_writer.hpp"
#include "services/labeling/ingest/csv_parser.hpp"
#include "services/labeling/ingest/features.hpp"
#include "services/labeling/ingest/project.hpp"
#include "services/labeling/ingest/values.hpp"
#include "services/labeling/ingest/zip_archive.hpp"

namespace labelloop::labeling::ingest {
namespace {

using nlohmann::json;

constexpr size_t kMaxExternalIdBytes = 1000;
constexpr int kRejectsInMessage = 20;

constexpr const char* kCreateStage =
    "CREATE TEMP TABLE ingest_stage (line int8, external_id text, sample_ts timestamptz, "
    "text_payload text, row_payload jsonb, image bytea, image_format text, features real[], "
    "labels text[]) ON COMMIT DROP";
constexpr int16_t kStageColumns = 9;

// Straight into items (an upload without a label column that brings new items, see
// ingestor.hpp): the columns an ingested row sets, in the order AcceptRow writes them.
constexpr const char* kDirectTarget =
    "labeling.items (project_id, external_id, sample_ts, text_payload, row_payload, image, "
    "image_format, features)";
constexpr int16_t kDirectColumns = 8;
// The staging table of rows encoded for kDirectTarget: those of a direct COPY that met an
// existing external id (its spooled data fits as it is) and those of an upload into a
// project whose items they repeat (ChooseTarget). kInsertPlain reads either staging table.
constexpr const char* kCreateDirectStage =
    "CREATE TEMP TABLE ingest_stage (project_id int8, external_id text, sample_ts timestamptz, "
    "text_payload text, row_payload jsonb, image bytea, image_format text, features real[]) "
    "ON COMMIT DROP";
constexpr const char* kUniqueViolation = "23505";
constexpr const char* kDeadlockDetected = "40P01";

constexpr const char* kInsertPlain =
    "INSERT INTO labeling.items (project_id, external_id, sample_ts, text_payload, row_payload, "
    "image, image_format, features) "
    "SELECT $1::int8, external_id, sample_ts, text_payload, row_payload, image, image_format, "
    "features FROM pg_temp.ingest_stage "
    "ON CONFLICT (project_id, external_id) DO NOTHING";

constexpr const char* kInsertFresh =
    "INSERT INTO labeling.items (project_id, external_id, sample_ts, text_payload, row_payload, "
    "image, image_format, features) "
    "SELECT $1::int8, external_id, sample_ts, text_payload, row_payload, image, image_format, "
    "features FROM pg_temp.ingest_stage";

// With labels: one row per external id (the first in the file), a single "import"
// judgement per labeled item; labeled when the project wants one judgement per item.
constexpr const char* kInsertLabeled =
    "WITH src AS MATERIALIZED ("
    "  SELECT DISTINCT ON (external_id) * FROM pg_temp.ingest_stage ORDER BY external_id, line),"
    " ins AS ("
    "  INSERT INTO labeling.items (project_id, external_id, sample_ts, text_payload, "
    "    row_payload, image, image_format, features, status, judgements, consensus)"
    "  SELECT $1::int8, external_id, sample_ts, text_payload, row_payload, image, image_format,"
    "    features,"
    "    CASE WHEN labels IS NOT NULL AND $2::int <= 1 THEN 'labeled' ELSE 'unlabeled' END,"
    "    CASE WHEN labels IS NOT NULL THEN 1 ELSE 0 END,"
    "    CASE WHEN labels IS NOT NULL AND $2::int <= 1 THEN labels END"
    "  FROM src ON CONFLICT (project_id, external_id) DO NOTHING"
    "  RETURNING id, external_id, status),"
    " lab AS ("
    "  INSERT INTO labeling.labels (item_id, project_id, annotator, classes)"
    "  SELECT ins.id, $1::int8, $3, src.labels FROM ins JOIN src USING (external_id)"
    "  WHERE src.labels IS NOT NULL"
    "  RETURNING item_id, classes),"
    " hist AS ("
    "  INSERT INTO labeling.label_history (item_id, project_id, annotator, old_classes, "
    "    new_classes)"
    "  SELECT item_id, $1::int8, $3, NULL, classes FROM lab RETURNING 1)"
    " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM lab), (SELECT count(*) FROM hist),"
    "  (SELECT count(*) FROM ins WHERE status = 'labeled')";

// The labeling service's sharded count of labeled items per project (migration 0003)
// counts imported labeled items too.
constexpr const char* kBumpLabeledCount =
    "INSERT INTO labeling.label_counts AS lc (project_id, shard, labeled) "
    "VALUES ($1, pg_backend_pid() % 256, $2) ON CONFLICT (project_id, shard) "
    "DO UPDATE SET labeled = lc.labeled + EXCLUDED.labeled";

std::string TextArrayLiteral(const std::vector<std::string>& values) {
  std::string s = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) s.push_back(',');
    s.push_back('"');
    for (char c : values[i]) {
      if (c == '"' || c == '\\') s.push_back('\\');
      s.push_back(c);
    }
    s.push_back('"');
  }
  s.push_back('}');
  return s;
}

std::string Where(int64_t line, const std::string& entry) {
  return entry.empty() ? "line " + std::to_string(line) : "entry '" + entry + "'";
}

// One row as the format readers hand it over; views stay valid until AcceptRow returns.
struct RowInput {
  int64_t line = 0;
  std::string entry;  // zip entry name (then line is 0)
  std::string_view external_id;
  std::optional<int64_t> sample_ts;
  std::optional<std::string_view> text;
  std::vector<float>* features = nullptr;  // tabular: parsed values (text/image: computed)
  std::vector<std::string_view> labels;
  std::string_view row_json;  // "" for none
  std::string_view image;
  std::string_view image_format;
};

class Session final : public UploadSession {
 public:
  Session(pg::Pool& pool, const IngestOptions& options, UploadSpec spec, std::atomic<int>* active)
      : slot_{active}, options_(options), spec_(std::move(spec)), lease_(pool.Acquire()) {}
  ~Session() override {
    copy_.reset();  // ends the COPY before the transaction rolls back
    tx_.reset();
  }

  Status Begin() {
    tx_ = std::make_unique<pqxx::work>(*lease_, "ingest");
    tx_->exec("SET LOCAL statement_timeout = 0");
    tx_->exec("SET LOCAL client_encoding = 'UTF8'");
    if (!LoadProject(*tx_, spec_.project_id, false, &project_)) {
      return Status::Error(Code::kNotFound,
                           "project " + std::to_string(spec_.project_id) + " does not exist");
    }
    if (project_.status != "active") {
      return Status::Error(Code::kFailedPrecondition, "project " + std::to_string(project_.id) +
                                                          " is " + project_.status +
                                                          ": only active projects take new items");
    }
    const auto& m = spec_.mapping;
    const bool zip = spec_.format == Format::kZipImages;
    if (zip != (project_.data_kind == "image")) {
      return Status::Error(Code::kInvalidArgument,
                           zip ? "project " + std::to_string(project_.id) + " holds " +
                                     project_.data_kind +
                                     " items: a zip of images fits image projects only"
                               : "project " + std::to_string(project_.id) +
                                     " holds images: upload a zip of images "
                                     "(UPLOAD_FORMAT_ZIP_IMAGES)");
    }
    if (!zip && m.external_id.empty()) {
      return Status::Error(Code::kInvalidArgument,
                           "mapping.external_id_column is required (items are idempotent by "
                           "external id)");
    }
    if (project_.data_kind == "text") {
      if (m.text.empty()) {
        return Status::Error(Code::kInvalidArgument,
                             "mapping.text_column is required for a text project");
      }
      if (!m.features.empty()) {
        return Status::Error(Code::kInvalidArgument,
                             "mapping.feature_columns must be empty for a text project (its "
                             "features are computed from the text)");
      }
      dim_ = project_.feature_dim.value_or(options_.text_feature_dim);
    } else if (project_.data_kind == "tabular") {
      if (m.features.empty()) {
        return Status::Error(Code::kInvalidArgument,
                             "mapping.feature_columns: name the numeric feature columns of a "
                             "tabular project");
      }
      // JSON Lines may hold all features in one array-valued key: its length decides.
      if (!(spec_.format == Format::kJsonl && m.features.size() == 1)) {
        dim_ = static_cast<int>(m.features.size());
      } else if (project_.feature_dim) {
        dim_ = *project_.feature_dim;
      }
    } else {
      image_spec_ = {.grid = options_.image_grid,
                     .rgb = options_.image_rgb,
                     .histogram_bins = options_.histogram_bins};
      dim_ = ImageFeatureDim(image_spec_);
    }
    if (dim_ > 0) {
      if (auto st = CheckDim(dim_); !st.ok()) return st;
    }
    if (zip) {
      tx_->exec(kCreateStage);
      spool_ = std::make_unique<Spool>(options_.spool_dir);
    } else if (m.label.empty()) {
      direct_layout_ = true;
      if (ProjectHasNoItems()) {
        StartDirectCopy();
      } else {
        pending_ = std::make_unique<pg::binary::CopyEncoder>();
      }
    } else {
      tx_->exec(kCreateStage);
      StartCopy();
    }
    if (spec_.format == Format::kCsv) {
      csv_ = std::make_unique<CsvParser>(options_.max_row_bytes,
                                         [this](const CsvRecord& r) { return OnCsvRecord(r); });
    }
    return Status::Ok();
  }

  Status Feed(std::string_view chunk) override {
    return Guard([&] { return DoFeed(chunk); });
  }

  Status Finish(UploadResult* out) override {
    return Guard([&] { return DoFinish(out); });
  }

 private:
  // Database and I/O failures become a status; the transaction is rolled back when the
  // session is destroyed.
  template <typename Fn>
  Status Guard(Fn&& fn) {
    try {
      return fn();
    } catch (const pqxx::broken_connection& e) {
      return Status::Error(Code::kUnavailable, std::string("database unreachable: ") + e.what());
    } catch (const std::exception& e) {
      spdlog::error("upload into project {} failed: {}", spec_.project_id, e.what());
      return Status::Error(Code::kInternal, std::string("upload failed: ") + e.what());
    }
  }

  Status DoFeed(std::string_view chunk) {
    result_.bytes_received += static_cast<int64_t>(chunk.size());
    if (result_.bytes_received > options_.max_upload_bytes) {
      return Status::Error(Code::kInvalidArgument, "the upload is larger than the limit of " +
                                                       std::to_string(options_.max_upload_bytes) +
                                                       " bytes");
    }
    switch (spec_.format) {
      case Format::kCsv:
        if (!csv_->Feed(chunk)) return FatalFromReader(csv_->error());
        break;
      case Format::kJsonl:
        if (!FeedJsonl(chunk)) return FatalFromReader("");
        break;
      case Format::kZipImages:
        spool_->Write(chunk);
        break;
    }
    return Status::Ok();
  }

  Status DoFinish(UploadResult* out) {
    switch (spec_.format) {
      case Format::kCsv:
        if (!csv_->Finish()) return FatalFromReader(csv_->error());
        if (!header_seen_) {
          return Status::Error(Code::kInvalidArgument, "the CSV is empty: no header line");
        }
        break;
      case Format::kJsonl:
        if (!FinishJsonl()) return FatalFromReader("");
        break;
      case Format::kZipImages:
        if (auto st = ReadZip(); !st.ok()) return st;
        break;
    }
    const auto copied_at = std::chrono::steady_clock::now();
    // (Returning an error abandons the COPY; the transaction is rolled back.)
    if (spec_.mode == Mode::kAllOrNothing && result_.rows_rejected > 0) {
      std::string msg =
          "upload rejected, nothing stored: " + std::to_string(result_.rows_rejected) + " of " +
          std::to_string(result_.rows_read) + " rows are invalid: ";
      for (size_t i = 0; i < result_.rejected.size() && i < kRejectsInMessage; ++i) {
        const auto& r = result_.rejected[i];
        msg += (i == 0 ? "" : "; ") + Where(r.line, r.entry) + ": " + r.reason;
      }
      if (result_.rows_rejected > kRejectsInMessage) {
        msg += "; and " + std::to_string(result_.rows_rejected - kRejectsInMessage) + " more";
      }
      return Status::Error(Code::kInvalidArgument, msg);
    }
    if (auto st = Commit(); !st.ok()) return st;
    const auto done_at = std::chrono::steady_clock::now();
    auto ms = [](auto a, auto b) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
    };
    spdlog::debug("upload into project {}: parse+copy {} ms, insert+commit {} ms", spec_.project_id,
                  ms(started_at_, copied_at), ms(copied_at, done_at));
    *out = std::move(result_);
    return Status::Ok();
  }

  Status CheckDim(int dim) const {
    if (project_.feature_dim && *project_.feature_dim != dim) {
      return Status::Error(Code::kFailedPrecondition,
                           "project " + std::to_string(project_.id) + " has feature_dim " +
                               std::to_string(*project_.feature_dim) +
                               " (fixed by its first ingestion); this upload's items have " +
                               std::to_string(dim) + " features");
    }
    return Status::Ok();
  }

  void StartCopy() {
    copy_ = std::make_unique<CopyStream>(*tx_, "pg_temp.ingest_stage",
                                         static_cast<size_t>(options_.copy_buffer_bytes));
  }

  bool ProjectHasNoItems() {
    return tx_
        ->exec_params("SELECT NOT EXISTS (SELECT 1 FROM labeling.items WHERE project_id = $1)",
                      project_.id)[0][0]
        .as<bool>();
  }

  // Rows go straight into labeling.items: no staging table to write and read back, no
  // INSERT ... SELECT, and the heap takes them in batches. Only an external id that is
  // already there (a duplicate in the file, or a concurrent upload) can make it fail;
  // the data sent is spooled to a file for that case (FinishCopy).
  void StartDirectCopy() {
    direct_ = true;
    copy_spool_ = std::make_unique<Spool>(options_.spool_dir);
    tx_->exec("SAVEPOINT ingest_direct");
    copy_ = std::make_unique<CopyStream>(
        *tx_, kDirectTarget, static_cast<size_t>(options_.copy_buffer_bytes), copy_spool_->fd());
  }

  // Into a project that has items, the rows of the first COPY buffer decide: when none
  // of their external ids is stored yet the upload brings new items and goes straight
  // into items, as into an empty project; otherwise (a file uploaded again) staging and
  // ON CONFLICT from the start.
  void ChooseTarget() {
    const bool seen = tx_->exec_params(
                             "SELECT EXISTS (SELECT 1 FROM labeling.items WHERE project_id = $1 "
                             "AND external_id = ANY ($2::text[]))",
                             project_.id, TextArrayLiteral(pending_ids_))[0][0]
                          .as<bool>();
    if (seen) {
      tx_->exec(kCreateDirectStage);
      StartCopy();
      insert_on_conflict_ = true;
    } else {
      StartDirectCopy();
    }
    copy_->encoder() = std::move(*pending_);  // (both begin with the COPY header)
    pending_.reset();
    pending_ids_.clear();
    copy_->MaybeFlush();
  }

  // Ends the COPY. A direct COPY that met an existing external id (or deadlocked on one)
  // is undone and its spooled data loaded into a staging table instead, for INSERT ...
  // ON CONFLICT.
  void FinishCopy() {
    if (pending_) ChooseTarget();
    if (!direct_) {
      copy_->End();
      copy_.reset();
      return;
    }
    try {
      direct_rows_ = copy_->End();
      copy_.reset();
      tx_->exec("RELEASE SAVEPOINT ingest_direct");
    } catch (const CopyError& e) {
      copy_.reset();
      // A deadlock: two uploads into one project, each holding (uncommitted) an external
      // id the other is inserting; the one PostgreSQL picks stages its rows instead.
      if (e.sqlstate() != kUniqueViolation && e.sqlstate() != kDeadlockDetected) throw;
      tx_->exec("ROLLBACK TO SAVEPOINT ingest_direct");
      spdlog::debug("upload into project {}: an external id is already there, staging instead",
                    spec_.project_id);
      direct_ = false;
      insert_on_conflict_ = true;
      tx_->exec(kCreateDirectStage);
      CopyStream::Replay(*tx_, "pg_temp.ingest_stage", copy_spool_->fd());
    }
    copy_spool_.reset();
  }

  Status FatalFromReader(const std::string& error) {
    if (!fatal_.ok()) return fatal_;
    return Status::Error(Code::kInvalidArgument, error.empty() ? "upload stopped" : error);
  }

  void Reject(int64_t line, const std::string& entry, std::string reason) {
    ++result_.rows_rejected;
    if (static_cast<int>(result_.rejected.size()) < options_.max_rejects_listed) {
      result_.rejected.push_back({line, entry, std::move(reason)});
    }
  }

  // Validates one row, computes its features and writes it to the COPY. Returns "" or
  // the reason the row is rejected.
  std::string AcceptRow(RowInput& row) {
    if (row.external_id.empty()) return "empty external id";
    if (row.external_id.size() > kMaxExternalIdBytes) {
      return "external id longer than " + std::to_string(kMaxExternalIdBytes) + " bytes";
    }
    if (!IsValidUtf8(row.external_id)) return "external id is not valid UTF-8";
    const Validators& v = project_.validators;
    std::vector<float>* features = row.features;
    if (project_.data_kind == "text" || (row.text && project_.data_kind == "tabular")) {
      if (!row.text) return "no text";
      if (!IsValidUtf8(*row.text)) return "text is not valid UTF-8 (or holds NUL bytes)";
      if (project_.data_kind == "text") {
        if (row.text->empty() && v.text_min_length == 0) return "empty text";
        if (auto e = CheckText(v, *row.text); !e.empty()) return e;
        TextFeatures(*row.text, dim_, &computed_);
        features = &computed_;
      }
    }
    if (project_.data_kind == "image") {
      if (auto e = ImageFeatures(row.image, image_spec_, &computed_); !e.empty()) return e;
      features = &computed_;
    }
    if (features == nullptr) return "no features";
    if (dim_ == 0) {
      if (auto st = CheckDim(static_cast<int>(features->size())); !st.ok()) {
        fatal_ = st;
        return st.message;
      }
      dim_ = static_cast<int>(features->size());
    }
    if (static_cast<int>(features->size()) != dim_) {
      return std::to_string(features->size()) + " features, expected " + std::to_string(dim_);
    }
    if (auto e = CheckFeatures(v, *features); !e.empty()) return e;
    for (auto l : row.labels) {
      if (!IsValidUtf8(l)) return "label is not valid UTF-8";
    }
    if (auto e = CheckLabels(project_, row.labels); !e.empty()) return e;
    if (!row.labels.empty()) has_labels_ = true;
    ++result_.rows_accepted;
    // In all-or-nothing mode nothing is kept after a reject: stop sending rows.
    if (spec_.mode == Mode::kAllOrNothing && result_.rows_rejected > 0) return "";

    pg::binary::CopyEncoder& enc = pending_ ? *pending_ : copy_->encoder();
    if (direct_layout_) {
      enc.BeginTuple(kDirectColumns);
      enc.Int64(project_.id);
    } else {
      enc.BeginTuple(kStageColumns);
      enc.Int64(row.line > 0 ? row.line : ++entry_seq_);
    }
    enc.Text(row.external_id);
    if (row.sample_ts)
      enc.TimestampMicros(*row.sample_ts);
    else
      enc.Null();
    if (row.text)
      enc.Text(*row.text);
    else
      enc.Null();
    if (!row.row_json.empty())
      enc.Jsonb(row.row_json);
    else
      enc.Null();
    if (!row.image.empty()) {
      enc.Text(row.image);
      enc.Text(row.image_format);
    } else {
      enc.Null();
      enc.Null();
    }
    enc.FloatArray(*features);
    if (!direct_layout_) {  // (direct: no label column is mapped)
      if (!row.labels.empty())
        enc.TextArray(row.labels);
      else
        enc.Null();
    }
    if (pending_) {
      pending_ids_.emplace_back(row.external_id);
      if (pending_->buffer().size() >= static_cast<size_t>(options_.copy_buffer_bytes)) {
        ChooseTarget();
      }
    } else {
      copy_->MaybeFlush();
    }
    return "";
  }

  // ---- CSV ----
  bool OnCsvRecord(const CsvRecord& rec) {
    if (!header_seen_) {
      header_seen_ = true;
      return ResolveCsvHeader(rec);
    }
    ++result_.rows_read;
    if (!rec.error.empty()) {
      Reject(rec.line, "", rec.error);
      return true;
    }
    if (rec.fields.size() != header_.size()) {
      Reject(rec.line, "",
             std::to_string(rec.fields.size()) + " fields, the header has " +
                 std::to_string(header_.size()));
      return true;
    }
    RowInput row;
    row.line = rec.line;
    row.external_id = rec.fields[static_cast<size_t>(col_id_)];
    if (col_ts_ >= 0) {
      auto cell = rec.fields[static_cast<size_t>(col_ts_)];
      if (!cell.empty()) {
        int64_t micros = 0;
        std::string err;
        if (!ParseTimestamp(cell, &micros, &err)) {
          Reject(rec.line, "", "column '" + spec_.mapping.sample_ts + "': " + err);
          return true;
        }
        row.sample_ts = micros;
      }
    }
    if (col_text_ >= 0) row.text = rec.fields[static_cast<size_t>(col_text_)];
    if (!col_features_.empty()) {
      values_.resize(col_features_.size());
      for (size_t i = 0; i < col_features_.size(); ++i) {
        auto cell = rec.fields[static_cast<size_t>(col_features_[i])];
        if (!ParseFloat(cell, &values_[i])) {
          Reject(rec.line, "",
                 "column '" + spec_.mapping.features[i] + "': '" + std::string(cell.substr(0, 40)) +
                     (cell.empty() ? "' is empty, expected a number" : "' is not a finite number"));
          return true;
        }
      }
      row.features = &values_;
    }
    if (col_label_ >= 0) {
      SplitLabels(rec.fields[static_cast<size_t>(col_label_)], spec_.mapping.label_separator, true,
                  &row.labels);
    }
    if (!extra_cols_.empty()) {
      row_json_.assign("{");
      for (size_t i = 0; i < extra_cols_.size(); ++i) {
        auto cell = rec.fields[static_cast<size_t>(extra_cols_[i])];
        if (!IsValidUtf8(cell)) {
          Reject(
              rec.line, "",
              "column '" + header_[static_cast<size_t>(extra_cols_[i])] + "' is not valid UTF-8");
          return true;
        }
        row_json_ += extra_keys_[i];
        AppendJsonString(&row_json_, cell);
      }
      row_json_ += '}';
      row.row_json = row_json_;
    }
    if (auto e = AcceptRow(row); !e.empty()) Reject(rec.line, "", e);
    return fatal_.ok();
  }

  bool ResolveCsvHeader(const CsvRecord& rec) {
    if (!rec.error.empty()) {
      fatal_ = Status::Error(Code::kInvalidArgument,
                             "line " + std::to_string(rec.line) + " (the header): " + rec.error);
      return false;
    }
    header_.assign(rec.fields.begin(), rec.fields.end());
    for (auto& h : header_) {
      while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.pop_back();
      while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.erase(0, 1);
    }
    std::vector<bool> used(header_.size(), false);
    auto find = [&](const std::string& name, const char* what, int* out) {
      if (name.empty()) return true;
      int found = -1;
      for (size_t i = 0; i < header_.size(); ++i) {
        if (header_[i] != name) continue;
        if (found >= 0) {
          fatal_ = Status::Error(Code::kInvalidArgument, "column '" + name + "' (" + what +
                                                             ") appears twice in the header");
          return false;
        }
        found = static_cast<int>(i);
      }
      if (found < 0) {
        fatal_ = Status::Error(Code::kInvalidArgument,
                               "column '" + name + "' (" + what +
                                   ") named in the mapping is not in the CSV header (line " +
                                   std::to_string(rec.line) + ")");
        return false;
      }
      used[static_cast<size_t>(found)] = true;
      *out = found;
      return true;
    };
    const auto& m = spec_.mapping;
    if (!find(m.external_id, "external id", &col_id_) ||
        !find(m.sample_ts, "sample time", &col_ts_) || !find(m.text, "text", &col_text_) ||
        !find(m.label, "label", &col_label_)) {
      return false;
    }
    for (const auto& f : m.features) {
      int c = -1;
      if (!find(f, "feature", &c)) return false;
      col_features_.push_back(c);
    }
    for (size_t i = 0; i < header_.size(); ++i) {
      if (used[i]) continue;
      extra_cols_.push_back(static_cast<int>(i));
      std::string key = extra_cols_.size() > 1 ? "," : "";
      AppendJsonString(&key, header_[i]);
      key += ':';
      extra_keys_.push_back(std::move(key));
    }
    return true;
  }

  // ---- JSON Lines ----
  bool FeedJsonl(std::string_view chunk) {
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        line_buf_.append(chunk);
        if (static_cast<int64_t>(line_buf_.size()) > options_.max_row_bytes) {
          fatal_ = Status::Error(Code::kInvalidArgument,
                                 "line " + std::to_string(jsonl_line_) + ": longer than " +
                                     std::to_string(options_.max_row_bytes) + " bytes");
          return false;
        }
        return true;
      }
      if (line_buf_.empty()) {
        OnJsonLine(chunk.substr(0, nl));
      } else {
        line_buf_.append(chunk.substr(0, nl));
        OnJsonLine(line_buf_);
        line_buf_.clear();
      }
      if (!fatal_.ok()) return false;
      chunk.remove_prefix(nl + 1);
    }
    return true;
  }

  bool FinishJsonl() {
    if (!line_buf_.empty()) OnJsonLine(line_buf_);
    line_buf_.clear();
    return fatal_.ok();
  }

  void OnJsonLine(std::string_view line) {
    const int64_t n = jsonl_line_++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank line
    ++result_.rows_read;
    json obj;
    try {
      obj = json::parse(line);
    } catch (const json::parse_error& e) {
      std::string what = e.what();
      const auto pos = what.find("parse error");
      Reject(n, "", "not valid JSON: " + (pos == std::string::npos ? what : what.substr(pos)));
      return;
    }
    if (!obj.is_object()) {
      Reject(n, "", "not a JSON object");
      return;
    }
    const auto& m = spec_.mapping;
    RowInput row;
    row.line = n;
    std::string id_text;
    auto id_it = obj.find(m.external_id);
    if (id_it == obj.end() || id_it->is_null()) {
      Reject(n, "", "key '" + m.external_id + "' (external id) is missing");
      return;
    }
    if (id_it->is_string()) {
      row.external_id = id_it->get_ref<const std::string&>();
    } else if (id_it->is_number_integer()) {
      id_text = id_it->dump();
      row.external_id = id_text;
    } else {
      Reject(n, "", "key '" + m.external_id + "' (external id) must be a string or an integer");
      return;
    }
    if (!m.sample_ts.empty()) {
      auto it = obj.find(m.sample_ts);
      if (it != obj.end() && !it->is_null()) {
        int64_t micros = 0;
        std::string err;
        if (it->is_number()) {
          const double secs = it->get<double>();
          if (!std::isfinite(secs) || std::fabs(secs) > 1e13) {
            Reject(n, "", "key '" + m.sample_ts + "': Unix seconds out of range");
            return;
          }
          micros = static_cast<int64_t>(std::llround(secs * 1e6));
        } else if (!it->is_string() ||
                   !ParseTimestamp(it->get_ref<const std::string&>(), &micros, &err)) {
          Reject(n, "",
                 "key '" + m.sample_ts +
                     "': " + (err.empty() ? "must be an ISO-8601 string or Unix seconds" : err));
          return;
        }
        row.sample_ts = micros;
      }
    }
    if (!m.text.empty()) {
      auto it = obj.find(m.text);
      if (it != obj.end() && !it->is_null()) {
        if (!it->is_string()) {
          Reject(n, "", "key '" + m.text + "' (text) must be a string");
          return;
        }
        row.text = std::string_view(it->get_ref<const std::string&>());
      }
    }
    if (!m.features.empty()) {
      values_.clear();
      auto bad = [&](const std::string& key, const std::string& why) {
        Reject(n, "", "key '" + key + "': " + why);
      };
      if (m.features.size() == 1 && obj.contains(m.features[0]) &&
          obj.at(m.features[0]).is_array()) {
        for (const auto& x : obj.at(m.features[0])) {
          if (!x.is_number() || !std::isfinite(x.get<double>())) {
            bad(m.features[0], "array holds a value that is not a finite number");
            return;
          }
          values_.push_back(x.get<float>());
        }
      } else {
        for (const auto& key : m.features) {
          auto it = obj.find(key);
          float f = 0;
          if (it == obj.end() || it->is_null()) {
            bad(key, "missing, expected a number");
            return;
          }
          if (it->is_number()) {
            f = it->get<float>();
            if (!std::isfinite(f)) {
              bad(key, "not a finite number");
              return;
            }
          } else if (!it->is_string() || !ParseFloat(it->get_ref<const std::string&>(), &f)) {
            bad(key, "'" + it->dump().substr(0, 40) + "' is not a number");
            return;
          }
          values_.push_back(f);
        }
      }
      row.features = &values_;
    }
    if (!m.label.empty()) {
      auto it = obj.find(m.label);
      if (it != obj.end() && !it->is_null()) {
        if (it->is_string()) {
          SplitLabels(it->get_ref<const std::string&>(), m.label_separator, true, &row.labels);
        } else if (it->is_array()) {
          for (const auto& x : *it) {
            if (!x.is_string()) {
              Reject(n, "", "key '" + m.label + "': labels must be strings");
              return;
            }
            row.labels.emplace_back(x.get_ref<const std::string&>());
          }
        } else {
          Reject(n, "", "key '" + m.label + "': a class name or an array of class names");
          return;
        }
      }
    }
    json extra = json::object();
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const auto& k = it.key();
      if (k == m.external_id || k == m.sample_ts || k == m.text || k == m.label) continue;
      if (std::find(m.features.begin(), m.features.end(), k) != m.features.end()) continue;
      extra[k] = *it;
    }
    if (!extra.empty()) {
      row_json_ = extra.dump();
      row.row_json = row_json_;
    }
    if (auto e = AcceptRow(row); !e.empty()) Reject(n, "", e);
  }

  // ---- zip of images ----
  struct ZipLabel {
    std::vector<std::string> classes;
    std::optional<int64_t> sample_ts;
    bool used = false;
    int64_t line = 0;
  };

  Status ReadZip() {
    ZipArchive zip;
    if (auto e = zip.Open(spool_->Release()); !e.empty()) {
      return Status::Error(Code::kInvalidArgument, e);
    }
    std::vector<ZipEntry> entries;
    if (auto e = zip.List({.max_uncompressed_bytes = options_.zip_max_uncompressed_bytes,
                           .max_ratio = options_.zip_max_ratio,
                           .max_entries = options_.zip_max_entries},
                          &entries);
        !e.empty()) {
      return Status::Error(Code::kInvalidArgument, "zip rejected, nothing stored: " + e);
    }
    std::unordered_map<std::string, ZipLabel> labels;
    for (const auto& e : entries) {
      if (e.name != "labels.csv") continue;
      std::string bytes;
      if (auto err = zip.Read(e, options_.max_row_bytes * 64, &bytes); !err.empty()) {
        return Status::Error(Code::kInvalidArgument, "entry 'labels.csv': " + err);
      }
      if (auto st = ParseZipLabels(bytes, &labels); !st.ok()) return st;
    }
    StartCopy();
    std::string bytes;
    for (const auto& e : entries) {
      if (e.directory || e.name == "labels.csv") continue;
      // macOS metadata and hidden files are not items.
      if (e.name.rfind("__MACOSX/", 0) == 0) continue;
      const auto slash = e.name.find_last_of('/');
      if (e.name[slash == std::string::npos ? 0 : slash + 1] == '.') continue;
      ++result_.rows_read;
      if (auto err = CheckEntryName(e.name); !err.empty()) {
        Reject(0, e.name, err);
        continue;
      }
      if (auto err = zip.Read(e, options_.max_image_bytes, &bytes); !err.empty()) {
        Reject(0, e.name, "image: " + err);
        continue;
      }
      DecodedImageInfo info;
      if (auto err = ProbeImage(bytes, &info); !err.empty()) {
        Reject(0, e.name, err);
        continue;
      }
      if (static_cast<int64_t>(info.width) * info.height > options_.max_image_pixels) {
        Reject(0, e.name,
               std::to_string(info.width) + "x" + std::to_string(info.height) +
                   " pixels, more than the limit of " + std::to_string(options_.max_image_pixels));
        continue;
      }
      if (auto err = CheckImage(project_.validators, info.format, info.width, info.height);
          !err.empty()) {
        Reject(0, e.name, err);
        continue;
      }
      RowInput row;
      row.entry = e.name;
      row.external_id = e.name;
      row.image = bytes;
      row.image_format = info.format;
      if (auto it = labels.find(e.name); it != labels.end()) {
        it->second.used = true;
        row.sample_ts = it->second.sample_ts;
        for (const auto& c : it->second.classes) row.labels.emplace_back(c);
      }
      if (auto err = AcceptRow(row); !err.empty()) Reject(0, e.name, err);
      if (!fatal_.ok()) return fatal_;
    }
    for (const auto& [name, l] : labels) {
      if (!l.used && !std::any_of(entries.begin(), entries.end(),
                                  [&](const ZipEntry& e) { return e.name == name; })) {
        Reject(l.line, "labels.csv",
               "line " + std::to_string(l.line) + ": no image named '" + name + "' in the zip");
      }
    }
    return Status::Ok();
  }

  Status ParseZipLabels(const std::string& bytes, std::unordered_map<std::string, ZipLabel>* out) {
    const auto& m = spec_.mapping;
    const std::string file_col = m.external_id.empty() ? "file" : m.external_id;
    const std::string label_col = m.label.empty() ? "label" : m.label;
    const std::string ts_col = m.sample_ts.empty() ? "sample_ts" : m.sample_ts;
    int c_file = -1, c_label = -1, c_ts = -1;
    size_t columns = 0;
    Status st;
    CsvParser parser(options_.max_row_bytes, [&](const CsvRecord& rec) {
      if (columns == 0) {
        columns = rec.fields.size();
        for (size_t i = 0; i < rec.fields.size(); ++i) {
          if (rec.fields[i] == file_col) c_file = static_cast<int>(i);
          if (rec.fields[i] == label_col) c_label = static_cast<int>(i);
          if (rec.fields[i] == ts_col) c_ts = static_cast<int>(i);
        }
        if (c_file < 0 || c_label < 0) {
          st = Status::Error(Code::kInvalidArgument,
                             "entry 'labels.csv': the header must name the columns '" + file_col +
                                 "' and '" + label_col + "'");
          return false;
        }
        return true;
      }
      auto reject = [&](const std::string& why) {
        ++result_.rows_read;
        Reject(rec.line, "labels.csv", "line " + std::to_string(rec.line) + ": " + why);
        return true;
      };
      if (!rec.error.empty()) return reject(rec.error);
      if (rec.fields.size() != columns) {
        return reject(std::to_string(rec.fields.size()) + " fields, the header has " +
                      std::to_string(columns));
      }
      ZipLabel l;
      l.line = rec.line;
      std::vector<std::string_view> parts;
      SplitLabels(rec.fields[static_cast<size_t>(c_label)], m.label_separator, true, &parts);
      for (auto p : parts) l.classes.emplace_back(p);
      if (c_ts >= 0 && !rec.fields[static_cast<size_t>(c_ts)].empty()) {
        int64_t micros = 0;
        std::string err;
        if (!ParseTimestamp(rec.fields[static_cast<size_t>(c_ts)], &micros, &err)) {
          return reject("column '" + ts_col + "': " + err);
        }
        l.sample_ts = micros;
      }
      std::string name(rec.fields[static_cast<size_t>(c_file)]);
      if (out->count(name) != 0) return reject("'" + name + "' is listed twice");
      (*out)[name] = std::move(l);
      return true;
    });
    if (!parser.Feed(bytes) || !parser.Finish()) {
      if (!st.ok()) return st;
      return Status::Error(Code::kInvalidArgument, "entry 'labels.csv': " + parser.error());
    }
    if (!st.ok()) return st;
    if (columns == 0) {
      return Status::Error(Code::kInvalidArgument, "entry 'labels.csv' is empty: no header");
    }
    return Status::Ok();
  }

  // ---- the final move from the staging table into labeling.items ----
  Status Commit() {
    FinishCopy();
    result_.feature_dim = project_.feature_dim.value_or(dim_);
    if (result_.rows_accepted == 0) {
      tx_->commit();
      return Status::Ok();
    }
    // The items first, the project's row lock after them, in every upload: a direct COPY
    // holds its rows (uncommitted) before it can lock the project, so an upload that
    // locked the project and then waited for those rows (same external ids) would
    // deadlock with it.
    int64_t labeled = 0;
    if (has_labels_) {
      const pqxx::result r = tx_->exec_params(kInsertLabeled, project_.id,
                                              project_.judgements_per_item, kImportAnnotator);
      result_.items_inserted = r[0][0].as<int64_t>();
      result_.labels_imported = r[0][1].as<int64_t>();
      labeled = r[0][3].as<int64_t>();
    } else if (direct_) {
      result_.items_inserted = direct_rows_;
    } else if (insert_on_conflict_) {
      result_.items_inserted =
          static_cast<int64_t>(tx_->exec_params(kInsertPlain, project_.id).affected_rows());
    } else {
      result_.items_inserted = InsertPlain();
    }
    ProjectInfo locked;
    if (!LoadProject(*tx_, project_.id, /*for_update=*/true, &locked)) {
      return Status::Error(Code::kNotFound,
                           "project " + std::to_string(project_.id) + " was deleted meanwhile");
    }
    if (locked.status != "active") {
      return Status::Error(Code::kFailedPrecondition, "project " + std::to_string(project_.id) +
                                                          " became " + locked.status +
                                                          " during the upload: nothing stored");
    }
    if (has_labels_ && locked.judgements_per_item != project_.judgements_per_item) {
      return Status::Error(Code::kFailedPrecondition,
                           "project " + std::to_string(project_.id) +
                               " changed its judgements_per_item during the upload: nothing "
                               "stored, upload again");
    }
    project_.feature_dim = locked.feature_dim;
    if (auto st = CheckDim(dim_); !st.ok()) return st;
    if (!locked.feature_dim) {
      tx_->exec_params(
          "UPDATE labeling.projects SET feature_dim = $2, updated_at = now() WHERE id = $1",
          project_.id, dim_);
    }
    if (labeled > 0) tx_->exec_params(kBumpLabeledCount, project_.id, labeled);
    result_.duplicates = result_.rows_accepted - result_.items_inserted;
    result_.feature_dim = dim_;
    tx_->commit();
    return Status::Ok();
  }

  // Into a project without items the only possible conflicts are duplicates within the
  // file: a plain INSERT (no speculative insertion) is tried first, in a savepoint, and
  // the ON CONFLICT form used only when that meets a duplicate.
  int64_t InsertPlain() {
    const bool empty = tx_->exec_params(
                              "SELECT NOT EXISTS (SELECT 1 FROM labeling.items WHERE "
                              "project_id = $1)",
                              project_.id)[0][0]
                           .as<bool>();
    if (empty) {
      tx_->exec("SAVEPOINT ingest_fast");
      try {
        const pqxx::result r = tx_->exec_params(kInsertFresh, project_.id);
        tx_->exec("RELEASE SAVEPOINT ingest_fast");
        return static_cast<int64_t>(r.affected_rows());
      } catch (const pqxx::unique_violation&) {
        tx_->exec("ROLLBACK TO SAVEPOINT ingest_fast");
        spdlog::debug("upload into project {}: duplicate external ids in the file",
                      spec_.project_id);
      }
    }
    const pqxx::result r = tx_->exec_params(kInsertPlain, project_.id);
    return static_cast<int64_t>(r.affected_rows());
  }

  // Gives the upload slot back however the session ends (even a throwing constructor).
  struct Slot {
    std::atomic<int>* active;
    ~Slot() { --*active; }
  } slot_;
  const IngestOptions& options_;
  UploadSpec spec_;
  pg::Pool::Lease lease_;
  std::unique_ptr<pqxx::work> tx_;
  std::unique_ptr<CopyStream> copy_;
  bool direct_layout_ = false;         // rows encoded as kDirectTarget's columns
  bool direct_ = false;                // copy_ goes into labeling.items
  std::unique_ptr<Spool> copy_spool_;  // what a direct COPY sent
  int64_t direct_rows_ = 0;            // rows a finished direct COPY stored
  bool insert_on_conflict_ = false;    // staged rows of the direct layout: ON CONFLICT
  std::unique_ptr<pg::binary::CopyEncoder> pending_;  // rows encoded before ChooseTarget
  std::vector<std::string> pending_ids_;              // their external ids
  ProjectInfo project_;
  ImageFeatureSpec image_spec_;
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  int dim_ = 0;
  bool has_labels_ = false;
  int64_t entry_seq_ = 0;
  UploadResult result_;
  Status fatal_;
  // CSV
  std::unique_ptr<CsvParser> csv_;
  bool header_seen_ = false;
  std::vector<std::string> header_;
  int col_id_ = -1, col_ts_ = -1, col_text_ = -1, col_label_ = -1;
  std::vector<int> col_features_;
  std::vector<int> extra_cols_;
  std::vector<std::string> extra_keys_;
  // JSON Lines
  std::string line_buf_;
  int64_t jsonl_line_ = 1;
  // zip
  std::unique_ptr<Spool> spool_;
  // reused per row
  std::vector<float> values_;
  std::vector<float> computed_;
  std::string row_json_;
};

}  // namespace

Ingestor::Ingestor(pg::Pool& pool, IngestOptions options)
    : pool_(pool), options_(std::move(options)) {}

Status Ingestor::BeginUpload(const UploadSpec& spec, std::unique_ptr<UploadSession>* session) {
  if (spec.project_id <= 0) {
    return Status::Error(Code::kInvalidArgument, "header.project_id: required");
  }
  if (++active_uploads_ > options_.max_concurrent_uploads) {
    --active_uploads_;
    return Status::Error(Code::kResourceExhausted,
                         std::to_string(options_.max_concurrent_uploads) +
                             " uploads are already in progress: retry when one has finished");
  }
  try {
    // The session gives the slot back when it is destroyed (also when Begin fails).
    auto s = std::make_unique<Session>(pool_, options_, spec, &active_uploads_);
    if (auto st = s->Begin(); !st.ok()) return st;
    *session = std::move(s);
    return Status::Ok();
  } catch (const pg::PoolExhausted& e) {
    return Status::Error(Code::kUnavailable, e.what());
  } catch (const pqxx::broken_connection& e) {
    return Status::Error(Code::kUnavailable, std::string("database unreachable: ") + e.what());
  } catch (const std::exception& e) {
    spdlog::error("upload into project {} could not start: {}", spec.project_id, e.what());
    return Status::Error(Code::kInternal, std::string("upload could not start: ") + e.what());
  }
}

}  // namespace labelloop::labeling::ingest

namespace labelloop::labeling::ingest {
namespace {

std::string FloatArrayLiteral(const std::vector<float>& values) {
  std::string s = "{";
  char buf[32];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) s.push_back(',');
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, values[i]);
    s.append(buf, p);
  }
  s.push_back('}');
  return s;
}

Status Invalid(std::string m) { return Status::Error(Code::kInvalidArgument, std::move(m)); }

constexpr const char* kPushInsert =
    "INSERT INTO labeling.items (project_id, external_id, sample_ts, text_payload, row_payload, "
    "image, image_format, features, status, judgements, consensus) "
    "VALUES ($1::int8, $2, to_timestamp($3::numeric / 1000000), $4, $5::jsonb, "
    "NULLIF($6::bytea, ''::bytea), $7, $8::real[], $9, $10::int, $11::text[]) "
    "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING id";

}  // namespace

Status Ingestor::Push(const PushItem& item, PushResult* result) {
  if (item.project_id <= 0) return Invalid("project_id: required");
  if (item.external_id.empty()) return Invalid("external_id: required");
  if (item.external_id.size() > kMaxExternalIdBytes || !IsValidUtf8(item.external_id)) {
    return Invalid("external_id: at most 1000 bytes of valid UTF-8");
  }
  for (const auto& l : item.labels) {
    if (!IsValidUtf8(l)) return Invalid("labels: not valid UTF-8");
  }
  json label_fields;  // null unless given
  if (!item.label_fields_json.empty()) {
    label_fields = json::parse(item.label_fields_json, nullptr, false);
    if (label_fields.is_discarded() || !label_fields.is_object()) {
      return Invalid("label_fields_json: must be a JSON object");
    }
  }
  json row = json::object();
  if (!item.row_json.empty()) {
    row = json::parse(item.row_json, nullptr, false);
    if (row.is_discarded() || !row.is_object()) return Invalid("row_json: must be a JSON object");
  }
  if (!label_fields.is_null()) row["label_fields"] = label_fields;
  try {
    return pool_.Run([&](pqxx::connection& c) -> Status {
      pqxx::work tx(c, "push");
      ProjectInfo p;
      if (!LoadProject(tx, item.project_id, false, &p)) {
        return Status::Error(Code::kNotFound,
                             "project " + std::to_string(item.project_id) + " does not exist");
      }
      if (p.status != "active") {
        return Status::Error(Code::kFailedPrecondition,
                             "project " + std::to_string(p.id) + " is " + p.status +
                                 ": only active projects take new items");
      }
      const Validators& v = p.validators;
      std::vector<float> features;
      std::string image_format;
      using K = PushItem::Kind;
      const char* wanted = item.kind == K::kImage  ? "image"
                           : item.kind == K::kText ? "text"
                                                   : "tabular";
      if (item.kind == K::kNone) return Invalid("payload: set an image, a text or features");
      if (p.data_kind != wanted) {
        return Invalid("payload: project " + std::to_string(p.id) + " holds " + p.data_kind +
                       " items, this push carries " +
                       (item.kind == K::kImage  ? "an image"
                        : item.kind == K::kText ? "a text"
                                                : "a feature row"));
      }
      if (item.kind == K::kImage) {
        if (static_cast<int64_t>(item.image.size()) > options_.max_image_bytes) {
          return Invalid("image: " + std::to_string(item.image.size()) +
                         " bytes, more than the limit of " +
                         std::to_string(options_.max_image_bytes));
        }
        DecodedImageInfo info;
        if (auto e = ProbeImage(item.image, &info); !e.empty()) return Invalid("image: " + e);
        if (static_cast<int64_t>(info.width) * info.height > options_.max_image_pixels) {
          return Invalid("image: " + std::to_string(info.width) + "x" +
                         std::to_string(info.height) + " pixels, more than the limit of " +
                         std::to_string(options_.max_image_pixels));
        }
        if (auto e = CheckImage(v, info.format, info.width, info.height); !e.empty()) {
          return Invalid("image: " + e);
        }
        const ImageFeatureSpec spec{.grid = options_.image_grid,
                                    .rgb = options_.image_rgb,
                                    .histogram_bins = options_.histogram_bins};
        if (auto e = ImageFeatures(item.image, spec, &features); !e.empty()) {
          return Invalid("image: " + e);
        }
        image_format = info.format;
      } else if (item.kind == K::kText) {
        if (!IsValidUtf8(item.text)) return Invalid("text: not valid UTF-8 (or holds NUL bytes)");
        if (item.text.empty() && v.text_min_length == 0) return Invalid("text: empty");
        if (auto e = CheckText(v, item.text); !e.empty()) return Invalid("text: " + e);
        TextFeatures(item.text, p.feature_dim.value_or(options_.text_feature_dim), &features);
      } else {
        features = item.features;
        if (features.empty()) return Invalid("features: empty");
        for (size_t i = 0; i < features.size(); ++i) {
          if (!std::isfinite(features[i])) {
            return Invalid("features: value " + std::to_string(i) + " is not a finite number");
          }
        }
      }
      if (auto e = CheckFeatures(v, features); !e.empty()) return Invalid("features: " + e);
      std::vector<std::string_view> label_views(item.labels.begin(), item.labels.end());
      if (auto e = CheckLabels(p, label_views); !e.empty()) return Invalid("labels: " + e);
      if (auto e = CheckLabelFields(v, label_fields); !e.empty()) {
        return Invalid("label_fields_json: " + e);
      }
      const int dim = static_cast<int>(features.size());
      auto mismatch = [&](int fixed) {
        return Status::Error(Code::kFailedPrecondition,
                             "project " + std::to_string(p.id) + " has feature_dim " +
                                 std::to_string(fixed) +
                                 " (fixed by its first ingestion); this item has " +
                                 std::to_string(dim) + " features");
      };
      if (p.feature_dim && *p.feature_dim != dim) return mismatch(*p.feature_dim);
      if (!p.feature_dim) {
        ProjectInfo locked;
        LoadProject(tx, p.id, /*for_update=*/true, &locked);
        if (locked.feature_dim && *locked.feature_dim != dim) return mismatch(*locked.feature_dim);
        if (!locked.feature_dim) {
          tx.exec_params(
              "UPDATE labeling.projects SET feature_dim = $2, updated_at = now() WHERE id = $1",
              p.id, dim);
        }
      }
      const bool labeled = !item.labels.empty();
      const bool complete = labeled && p.judgements_per_item <= 1;
      const std::string labels_literal = TextArrayLiteral(item.labels);
      std::optional<std::string> text;
      if (item.kind == K::kText) text = item.text;
      std::optional<std::string> row_text;
      if (!row.empty()) row_text = row.dump();
      std::optional<std::string> format;
      if (!image_format.empty()) format = image_format;
      std::optional<std::string> consensus;
      if (complete) consensus = labels_literal;
      const pqxx::result r =
          tx.exec_params(kPushInsert, p.id, item.external_id, item.sample_ts_micros, text, row_text,
                         pqxx::binarystring(item.image.data(), item.image.size()), format,
                         FloatArrayLiteral(features), complete ? "labeled" : "unlabeled",
                         labeled ? 1 : 0, consensus);
      result->feature_dim = dim;
      if (r.empty()) {
        // Idempotent: the same external id again changes nothing.
        const pqxx::result existing = tx.exec_params(
            "SELECT id FROM labeling.items WHERE project_id = $1 AND external_id = $2", p.id,
            item.external_id);
        tx.commit();
        result->item_id = existing.empty() ? 0 : existing[0][0].as<int64_t>();
        result->created = false;
        result->labeled = false;
        return Status::Ok();
      }
      result->item_id = r[0][0].as<int64_t>();
      result->created = true;
      if (labeled) {
        tx.exec_params(
            "INSERT INTO labeling.labels (item_id, project_id, annotator, classes) "
            "VALUES ($1, $2, $3, $4::text[])",
            result->item_id, p.id, kImportAnnotator, labels_literal);
        tx.exec_params(
            "INSERT INTO labeling.label_history (item_id, project_id, annotator, old_classes, "
            "new_classes) VALUES ($1, $2, $3, NULL, $4::text[])",
            result->item_id, p.id, kImportAnnotator, labels_literal);
        if (complete) tx.exec_params(kBumpLabeledCount, p.id, int64_t{1});
      }
      result->labeled = labeled;
      tx.commit();
      return Status::Ok();
    });
  } catch (const pg::PoolExhausted& e) {
    return Status::Error(Code::kUnavailable, e.what());
  } catch (const pqxx::broken_connection& e) {
    return Status::Error(Code::kUnavailable, std::string("database unreachable: ") + e.what());
  } catch (const std::exception& e) {
    spdlog::error("push into project {} failed: {}", item.project_id, e.what());
    return Status::Error(Code::kInternal, std::string("push failed: ") + e.what());
  }
}

}  // namespace labelloop::labeling::ingest
