#include "services/dl_manager/storage/export.hpp"

#include <charconv>
#include <chrono>
#include <ctime>
#include <functional>
#include <span>

#include "common/bootstrap/runtime.hpp"
#include "common/pg/binary_format.hpp"
#include "services/dl_manager/archive/classifier.hpp"
#include "services/dl_manager/archive/json_text.hpp"
#include "services/dl_manager/archive/pg_binary.hpp"
#include "services/dl_manager/archive/readme.hpp"
#include "services/dl_manager/storage/binary_cursor.hpp"
#include "services/dl_manager/storage/prediction_chunks.hpp"

namespace labelloop::dl_manager {
namespace {

namespace bin = pg::binary;

// Plain columns, in binary, read by cursors in item order; every record is formatted
// here. The labels are a second cursor merged with the items by item id (both sorted
// the same way), not a lookup per item, so PostgreSQL only scans and sends rows while
// this process formats them.
constexpr const char* kLabeledItemsSql = R"(
SELECT item_id, external_id, sample_ts, labels FROM labeling.v_items
WHERE project_id = $1 AND labeled ORDER BY item_id)";

// The unlabeled items in item order walk the project's range of items_claim_idx, which
// is ordered by item_id + 0 (see labeling's migration 0007); the labeled ones walk
// items_labeled_idx. Every item of a project is read as those two cursors merged: a
// query for all of them could only walk items_pkey across every project's items.
constexpr const char* kLabeledStampsSql = R"(
SELECT item_id, external_id, sample_ts FROM labeling.v_items
WHERE project_id = $1 AND labeled ORDER BY item_id)";

constexpr const char* kUnlabeledItemsSql = R"(
SELECT item_id, external_id, sample_ts FROM labeling.v_items
WHERE project_id = $1 AND unlabeled ORDER BY item_id + 0)";

constexpr const char* kUnlabeledFeaturesSql = R"(
SELECT item_id, external_id, sample_ts, features FROM labeling.v_items
WHERE project_id = $1 AND unlabeled ORDER BY item_id + 0)";

constexpr const char* kLabelsSql = R"(
SELECT item_id, annotator, classes, created_at, updated_at, seconds_spent
FROM labeling.v_labels WHERE project_id = $1 ORDER BY item_id, annotator)";

constexpr const char* kUnlabeledCountSql = R"(
SELECT count(*) FROM labeling.v_items WHERE project_id = $1 AND unlabeled)";

// Column positions shared by the item queries above.
enum ItemColumn { kItemId = 0, kExternalId = 1, kSampleTs = 2, kFourth = 3 };
// Column 0 of every query here is the item id.
enum LabelColumn {
  kAnnotator = 1,
  kClasses = 2,
  kCreatedAt = 3,
  kUpdatedAt = 4,
  kSecondsSpent = 5
};

void AppendTimestampOrNull(std::string* out, const BinaryCursor& c, int column) {
  if (c.IsNull(column)) {
    out->append("null");
  } else {
    pg_binary::AppendJsonTimestamp(out, bin::TimestampMicros(c.Field(column)));
  }
}

void AppendTextOrNull(std::string* out, const BinaryCursor& c, int column) {
  if (c.IsNull(column)) {
    out->append("null");
  } else {
    AppendJsonString(out, c.Field(column));
  }
}

void AppendTextArrayOrNull(std::string* out, const BinaryCursor& c, int column) {
  if (c.IsNull(column)) {
    out->append("null");
  } else {
    pg_binary::AppendJsonTextArray(out, c.Field(column));
  }
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

// `{"item_id":1,"external_id":"x","sample_ts":"..."` of the current item row.
void AppendItemHead(std::string* out, const BinaryCursor& item) {
  out->append("{\"item_id\":");
  AppendInt(out, bin::Int8(item.Field(kItemId)));
  out->append(",\"external_id\":");
  AppendTextOrNull(out, item, kExternalId);
  out->append(",\"sample_ts\":");
  AppendTimestampOrNull(out, item, kSampleTs);
}

// A cursor whose rows come in item order, with the current row's item id (column 0)
// read ahead, for merging cursors by item.
class ItemOrderedCursor {
 public:
  ItemOrderedCursor(CursorSession& session, const std::string& name, const std::string& sql,
                    const std::vector<std::string>& params, int batch_rows)
      : cursor_(session, name, sql, params, batch_rows) {
    Advance();
  }
  bool has() const { return has_; }
  int64_t item() const { return item_; }
  const BinaryCursor& row() const { return cursor_; }
  void Advance() {
    has_ = cursor_.Next();
    if (has_) item_ = bin::Int8(cursor_.Field(0));
  }

 private:
  BinaryCursor cursor_;
  bool has_ = false;
  int64_t item_ = 0;
};

// The project's labels in (item id, annotator) order, merged with an item cursor.
class LabelMerge : public ItemOrderedCursor {
 public:
  LabelMerge(CursorSession& session, const std::string& name, const ExportOptions& options)
      : ItemOrderedCursor(session, name, kLabelsSql, {std::to_string(options.project_id)},
                          options.batch_rows) {}
  // Skips the labels of items before item_id; true when the current label is item_id's.
  bool At(int64_t item_id) {
    while (has() && item() < item_id) Advance();
    return has() && item() == item_id;
  }
};

// A JSON array of records written a bounded number of items per Next(), from cursors
// opened on the producer's thread when libzip starts the entry.
class RecordsProducer : public EntryProducer {
 public:
  static constexpr size_t kPieceBytes = 256 << 10;

  RecordsProducer(pqxx::dbtransaction& tx, std::string entry, const ExportOptions& options,
                  BuildProgress* progress)
      : tx_(tx), entry_(std::move(entry)), options_(options), progress_(progress) {}

  void Open() override {
    progress_->SetPhase(entry_);
    session_ = std::make_unique<CursorSession>(tx_);
    OpenCursors(*session_);
  }

  bool Next(std::string* out) override {
    if (progress_->abort.load()) throw ExportAborted("the build was stopped");
    if (!started_) {
      out->push_back('[');
      started_ = true;
    }
    // A piece of about kPieceBytes (an item's records are never split).
    const size_t start = out->size();
    while (out->size() - start < kPieceBytes) {
      if (!WriteItem(out)) {
        out->append(records_ == 0 ? "]\n" : "\n]\n");
        CloseCursors();
        session_.reset();
        return false;
      }
    }
    return true;
  }

  int64_t records() const override { return records_; }

 protected:
  virtual void OpenCursors(CursorSession& session) = 0;
  virtual void CloseCursors() = 0;
  // Writes the records of the next item; false when there is none.
  virtual bool WriteItem(std::string* out) = 0;

  void BeginRecord(std::string* out) {
    out->append(records_ == 0 ? "\n" : ",\n");
    ++records_;
    progress_->rows.fetch_add(1, std::memory_order_relaxed);
  }
  std::vector<std::string> ProjectParam() const { return {std::to_string(options_.project_id)}; }

  pqxx::dbtransaction& tx_;
  std::string entry_;
  const ExportOptions& options_;
  BuildProgress* progress_;

 private:
  std::unique_ptr<CursorSession> session_;
  bool started_ = false;
  int64_t records_ = 0;
};

// human_labels.json: every labeled item with its annotators and latest label change.
class HumanLabels : public RecordsProducer {
 public:
  HumanLabels(pqxx::dbtransaction& tx, const ExportOptions& options, BuildProgress* progress)
      : RecordsProducer(tx, "human_labels.json", options, progress) {}

 protected:
  void OpenCursors(CursorSession& session) override {
    items_ = std::make_unique<BinaryCursor>(session, "ll_human_items", kLabeledItemsSql,
                                            ProjectParam(), options_.batch_rows);
    labels_ = std::make_unique<LabelMerge>(session, "ll_human_labels", options_);
  }
  void CloseCursors() override {
    items_.reset();
    labels_.reset();
  }

  bool WriteItem(std::string* out) override {
    if (!items_->Next()) return false;
    const int64_t item = bin::Int8(items_->Field(kItemId));
    BeginRecord(out);
    AppendItemHead(out, *items_);
    out->append(",\"labels\":");
    AppendTextArrayOrNull(out, *items_, kFourth);
    out->append(",\"annotators\":[");
    int64_t labeled_at = 0;
    bool any = false;
    for (; labels_->At(item); labels_->Advance()) {
      if (any) out->push_back(',');
      AppendTextOrNull(out, labels_->row(), kAnnotator);
      const int64_t updated = bin::TimestampMicros(labels_->row().Field(kUpdatedAt));
      if (!any || updated > labeled_at) labeled_at = updated;
      any = true;
    }
    out->append("],\"labeled_at\":");
    if (any) {
      pg_binary::AppendJsonTimestamp(out, labeled_at);
    } else {
      out->append("null");
    }
    out->push_back('}');
    return true;
  }

 private:
  std::unique_ptr<BinaryCursor> items_;
  std::unique_ptr<LabelMerge> labels_;
};

// timestamps.json: one record per (item, label) for every item; items without a label
// get one record with null label fields. The items are the labeled and the unlabeled
// cursors merged by item id.
class Timestamps : public RecordsProducer {
 public:
  Timestamps(pqxx::dbtransaction& tx, const ExportOptions& options, BuildProgress* progress)
      : RecordsProducer(tx, "timestamps.json", options, progress) {}

 protected:
  void OpenCursors(CursorSession& session) override {
    labeled_ = std::make_unique<ItemOrderedCursor>(session, "ll_stamps_labeled", kLabeledStampsSql,
                                                   ProjectParam(), options_.batch_rows);
    unlabeled_ = std::make_unique<ItemOrderedCursor>(
        session, "ll_stamps_unlabeled", kUnlabeledItemsSql, ProjectParam(), options_.batch_rows);
    labels_ = std::make_unique<LabelMerge>(session, "ll_stamps_labels", options_);
  }
  void CloseCursors() override {
    labeled_.reset();
    unlabeled_.reset();
    labels_.reset();
  }

  bool WriteItem(std::string* out) override {
    const bool labeled =
        labeled_->has() && (!unlabeled_->has() || labeled_->item() < unlabeled_->item());
    ItemOrderedCursor& next = labeled ? *labeled_ : *unlabeled_;
    if (!next.has()) return false;
    const BinaryCursor& row = next.row();
    const int64_t item = next.item();
    bool any = false;
    for (; labels_->At(item); labels_->Advance()) {
      const BinaryCursor& l = labels_->row();
      Begin(out, row, labeled);
      out->append(",\"annotator\":");
      AppendTextOrNull(out, l, kAnnotator);
      out->append(",\"label_classes\":");
      AppendTextArrayOrNull(out, l, kClasses);
      out->append(",\"submitted_at\":");
      AppendTimestampOrNull(out, l, kCreatedAt);
      out->append(",\"updated_at\":");
      AppendTimestampOrNull(out, l, kUpdatedAt);
      out->append(",\"seconds_spent\":");
      if (l.IsNull(kSecondsSpent)) {
        out->append("null");
      } else {
        AppendFloat(out, bin::Float4(l.Field(kSecondsSpent)));
      }
      out->push_back('}');
      any = true;
    }
    if (!any) {
      Begin(out, row, labeled);
      out->append(
          ",\"annotator\":null,\"label_classes\":null,\"submitted_at\":null,"
          "\"updated_at\":null,\"seconds_spent\":null}");
    }
    next.Advance();
    return true;
  }

 private:
  void Begin(std::string* out, const BinaryCursor& item, bool labeled) {
    BeginRecord(out);
    AppendItemHead(out, item);
    out->append(labeled ? ",\"labeled\":true" : ",\"labeled\":false");
  }

  std::unique_ptr<ItemOrderedCursor> labeled_;
  std::unique_ptr<ItemOrderedCursor> unlabeled_;
  std::unique_ptr<LabelMerge> labels_;
};

// The stored predictions of a model, asked for in ascending item id.
class PredictionStream {
 public:
  virtual ~PredictionStream() = default;
  // The probabilities (classes values, valid until the next call) of item_id, skipping
  // the predictions of smaller ids; nullptr when item_id has none. Each call must ask
  // for a larger id than the one before.
  virtual const float* Find(int64_t item_id) = 0;
};

// The model's packed prediction chunks (training.v_prediction_chunks), read between two
// rows of the session's cursors: the reader runs its query for the next chunk on tx
// once a chunk (up to 65,536 items) is used up, after the session's FETCH in flight.
class StoredPredictions : public PredictionStream {
 public:
  StoredPredictions(pqxx::dbtransaction& tx, CursorSession& session, const ExportOptions& options,
                    int classes)
      : reader_(tx, options.model_id, classes, /*with_probabilities=*/true,
                [&session] { session.Quiesce(); }) {}
  const float* Find(int64_t item_id) override {
    std::span<const float> p;
    return reader_.Find(item_id, p) ? p.data() : nullptr;
  }

 private:
  PredictionChunkReader reader_;
};

// machine_labels.json: every unlabeled item with its predicted classes, confidence and
// probabilities, from the stored predictions (merged by item id) or from the model
// applied here to a batch of items' features at a time.
class MachineLabels : public RecordsProducer {
 public:
  MachineLabels(pqxx::dbtransaction& tx, std::string entry, const ExportOptions& options,
                BuildProgress* progress, const std::vector<std::string>& classes, bool multi_label,
                const Classifier* model)
      : RecordsProducer(tx, std::move(entry), options, progress),
        multi_label_(multi_label),
        model_(model) {
    for (const auto& c : classes) {
      std::string key;
      AppendJsonString(&key, c);
      quoted_.push_back(key);
      key.push_back(':');
      keys_.push_back(std::move(key));
    }
  }

 protected:
  void OpenCursors(CursorSession& session) override {
    if (model_ != nullptr) {
      items_ = std::make_unique<BinaryCursor>(session, "ll_machine_items", kUnlabeledFeaturesSql,
                                              ProjectParam(), options_.batch_rows);
    } else {
      items_ = std::make_unique<BinaryCursor>(session, "ll_machine_items", kUnlabeledItemsSql,
                                              ProjectParam(), options_.batch_rows);
      predictions_ = std::make_unique<StoredPredictions>(tx_, session, options_, classes());
    }
  }
  void CloseCursors() override {
    items_.reset();
    predictions_.reset();
  }

  bool WriteItem(std::string* out) override {
    if (model_ != nullptr) return WriteModelBatch(out);
    if (!items_->Next()) return false;
    const int64_t item = bin::Int8(items_->Field(kItemId));
    const float* p = predictions_->Find(item);
    if (p == nullptr) {
      throw ExportInvalid("the stored predictions of model " + std::to_string(options_.model_id) +
                          " have no row for unlabeled item " + std::to_string(item));
    }
    BeginRecord(out);
    AppendItemHead(out, *items_);
    WriteTail(p, out);
    return true;
  }

 private:
  int classes() const { return static_cast<int>(keys_.size()); }

  // Reads up to a batch of items, applies the model to their features at once and
  // writes their records (one call writes many items: the batch is the unit).
  bool WriteModelBatch(std::string* out) {
    const int dim = model_->feature_dim();
    heads_.clear();
    head_ends_.clear();
    features_.resize(static_cast<size_t>(options_.batch_rows) * static_cast<size_t>(dim));
    size_t n = 0;
    while (n < static_cast<size_t>(options_.batch_rows) && items_->Next()) {
      bin::Float4Array(items_->Field(kFourth), &row_);
      if (static_cast<int>(row_.size()) != dim) {
        throw ExportInvalid("item " + std::to_string(bin::Int8(items_->Field(kItemId))) + " has " +
                            std::to_string(row_.size()) + " features, the model expects " +
                            std::to_string(dim));
      }
      std::copy(row_.begin(), row_.end(), features_.begin() + static_cast<ptrdiff_t>(n * dim));
      AppendItemHead(&heads_, *items_);
      head_ends_.push_back(heads_.size());
      ++n;
    }
    if (n == 0) return false;
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> x(
        features_.data(), static_cast<Eigen::Index>(n), dim);
    // Row-major so that each item's probabilities are contiguous.
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> probs =
        model_->Predict(x);
    if (probs.cols() != classes()) {
      throw ExportInvalid("model " + std::to_string(options_.model_id) + " gives " +
                          std::to_string(probs.cols()) + " probabilities, it has " +
                          std::to_string(classes()) + " classes");
    }
    size_t begin = 0;
    for (size_t r = 0; r < n; ++r) {
      BeginRecord(out);
      out->append(heads_, begin, head_ends_[r] - begin);
      begin = head_ends_[r];
      WriteTail(probs.row(static_cast<Eigen::Index>(r)).data(), out);
    }
    return true;
  }

  void WriteTail(const float* p, std::string* out) const {
    const int n = classes();
    const Decision d = Decide(p, n, multi_label_);
    out->append(",\"predicted\":[");
    for (size_t k = 0; k < d.classes.size(); ++k) {
      if (k > 0) out->push_back(',');
      out->append(quoted_[static_cast<size_t>(d.classes[k])]);
    }
    out->append("],\"confidence\":");
    AppendFloat(out, d.confidence);
    out->append(",\"probabilities\":{");
    for (int c = 0; c < n; ++c) {
      if (c > 0) out->push_back(',');
      out->append(keys_[static_cast<size_t>(c)]);
      AppendFloat(out, p[c]);
    }
    out->append("}}");
  }

  bool multi_label_;
  const Classifier* model_;
  std::vector<std::string> quoted_;
  std::vector<std::string> keys_;
  std::unique_ptr<BinaryCursor> items_;
  std::unique_ptr<PredictionStream> predictions_;
  // The model path's batch: features row-major and each item's record head.
  std::vector<float> features_;
  std::vector<float> row_;
  std::string heads_;
  std::vector<size_t> head_ends_;
};

std::string IsoNow() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

ExportResult BuildArchive(pqxx::connection& conn, const ExportOptions& options,
                          const std::string& path, BuildProgress* progress) {
  using nlohmann::json;
  progress->SetPhase("loading");
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
  tx.exec("SET LOCAL TimeZone = 'UTC'");
  // Cursors run a batch at a time: compiling them with JIT costs more than it saves.
  tx.exec("SET LOCAL jit = off");
  tx.exec("SET LOCAL statement_timeout = " + std::to_string(options.statement_timeout_ms));

  auto project_rows = tx.exec_params(
      "SELECT project_id, name, data_kind, label_kind, to_json(classes)::text, "
      "judgements_per_item, feature_dim, to_json(created_at)::text "
      "FROM labeling.v_projects WHERE project_id = $1",
      options.project_id);
  if (project_rows.empty()) {
    throw ExportNotFound("project " + std::to_string(options.project_id) + " does not exist");
  }
  const auto& pr = project_rows[0];
  json project{{"project_id", options.project_id},
               {"name", pr[1].as<std::string>()},
               {"data_kind", pr[2].as<std::string>()},
               {"label_kind", pr[3].as<std::string>()},
               {"classes", json::parse(pr[4].c_str())},
               {"judgements_per_item", pr[5].as<int>()},
               {"feature_dim", pr[6].is_null() ? json(nullptr) : json(pr[6].as<int>())},
               {"created_at", json::parse(pr[7].c_str())}};

  auto model_rows = tx.exec_params(
      "SELECT project_id, version, model_type, multi_label, to_json(classes)::text, "
      "model_json::text, metrics::text, labeled_items, predictions_ready, "
      "to_json(created_at)::text FROM training.v_models WHERE model_id = $1",
      options.model_id);
  if (model_rows.empty()) {
    throw ExportNotFound("model " + std::to_string(options.model_id) + " does not exist");
  }
  const auto& mr = model_rows[0];
  if (mr[0].as<int64_t>() != options.project_id) {
    throw ExportNotFound("model " + std::to_string(options.model_id) + " belongs to project " +
                         mr[0].c_str() + ", not to project " + std::to_string(options.project_id));
  }
  const bool multi_label = mr[3].as<bool>();
  const std::vector<std::string> classes =
      json::parse(mr[4].c_str()).get<std::vector<std::string>>();
  std::string model_json_text = mr[5].as<std::string>();
  json model{{"model_id", options.model_id},
             {"version", mr[1].as<int>()},
             {"model_type", mr[2].as<std::string>()},
             {"multi_label", multi_label},
             {"classes", classes},
             {"metrics", json::parse(mr[6].c_str())},
             {"labeled_items", mr[7].as<int64_t>()},
             {"created_at", json::parse(mr[9].c_str())}};

  // Stored predictions are reused only when the model's are complete (predictions_ready,
  // as ranking reads them) and cover every unlabeled item (a merge of the unlabeled ids
  // with the chunks' ids); a model without them needs no coverage check: none count.
  int64_t unlabeled = 0;
  int64_t missing = 0;
  if (mr[8].as<bool>()) {
    const auto coverage =
        StoredPredictionCoverage(tx, options.project_id, options.model_id,
                                 static_cast<int>(classes.size()), options.batch_rows);
    unlabeled = coverage.unlabeled;
    missing = coverage.missing;
  } else {
    unlabeled = tx.exec_params(kUnlabeledCountSql, options.project_id)[0][0].as<int64_t>();
    missing = unlabeled;
  }
  const bool use_stored = missing == 0;
  const std::string source = use_stored ? "stored_predictions" : "model";

  std::optional<Classifier> classifier;
  if (!use_stored) {
    try {
      classifier = Classifier::FromJson(json::parse(model_json_text));
    } catch (const std::exception& e) {
      throw ExportInvalid("model " + std::to_string(options.model_id) +
                          " cannot be applied to the " + std::to_string(missing) +
                          " unlabeled items without stored predictions: " + e.what());
    }
    if (classifier->classes() != classes) {
      throw ExportInvalid("model " + std::to_string(options.model_id) +
                          ": the classes in model_json differ from the model's class list");
    }
  }
  // The JSON entries are produced on a thread of their own while libzip deflates on
  // this one; they use tx there, one entry after the other, and nothing else touches
  // tx until the archive is closed.
  ZipWriter zip(path, options.deflate_level);
  zip.Add("human_labels.json",
          std::make_unique<ThreadedProducer>(std::make_unique<HumanLabels>(tx, options, progress)));
  zip.Add("machine_labels.json", std::make_unique<ThreadedProducer>(std::make_unique<MachineLabels>(
                                     tx, "machine_labels.json", options, progress, classes,
                                     multi_label, classifier ? &*classifier : nullptr)));
  zip.Add("timestamps.json",
          std::make_unique<ThreadedProducer>(std::make_unique<Timestamps>(tx, options, progress)));
  zip.Add("classifier/model.json", std::make_unique<StringProducer>(std::move(model_json_text)));
  zip.Add("classifier/README.md", std::make_unique<StringProducer>(ClassifierReadme(model)));
  zip.Add("README.md", std::make_unique<StringProducer>(ArchiveReadme(project, model, source)));

  // The manifest is produced last, from the stats of the entries before it.
  const std::string created_at = IsoNow();
  class ManifestProducer : public EntryProducer {
   public:
    ManifestProducer(std::function<json()> make, json* keep)
        : make_(std::move(make)), keep_(keep) {}
    bool Next(std::string* out) override {
      *keep_ = make_();
      out->append(keep_->dump(2));
      out->push_back('\n');
      return false;
    }

   private:
    std::function<json()> make_;
    json* keep_;
  };
  ExportResult result;
  zip.Add("manifest.json",
          std::make_unique<ManifestProducer>(
              [&] {
                progress->SetPhase("manifest.json");
                json entries = json::array();
                json counts = json::object();
                for (const auto& e : zip.entries()) {
                  entries.push_back({{"name", e.name},
                                     {"bytes", e.bytes},
                                     {"records", e.records},
                                     {"sha256", e.sha256}});
                  if (e.name.ends_with(".json") && e.name.find('/') == std::string::npos) {
                    counts[e.name] = e.records;
                  }
                }
                result.entry_counts = counts;
                return json{{"format", "labelloop.download.v1"},
                            {"labelloop_version", bootstrap::Version()},
                            {"created_at", created_at},
                            {"download_id", options.download_id},
                            {"project", project},
                            {"model", model},
                            {"machine_labels_source", source},
                            {"unlabeled_items", unlabeled},
                            {"stored_predictions_missing", missing},
                            {"schema", EntrySchema()},
                            {"counts", counts},
                            {"entries", entries}};
              },
              &result.manifest));
  zip.Close();
  tx.commit();
  result.entries = zip.entries();
  return result;
}

}  // namespace labelloop::dl_manager
