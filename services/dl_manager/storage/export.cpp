#include "services/dl_manager/storage/export.hpp"

#include <chrono>
#include <ctime>
#include <functional>

#include "common/bootstrap/runtime.hpp"
#include "services/dl_manager/archive/classifier.hpp"
#include "services/dl_manager/archive/json_text.hpp"
#include "services/dl_manager/archive/readme.hpp"

namespace labelloop::dl_manager {
namespace {

// One JSON record per row, produced by a formatter from each fetched batch.
//
// Every per-item lookup is a LATERAL subquery behind OFFSET 0 (which keeps the planner
// from flattening it): an index probe per item, in item order, whatever the planner
// believes about table sizes. Freshly written, not yet analyzed tables otherwise get
// nested loops over sequential scans, quadratic in the project size.
constexpr const char* kHumanLabelsSql = R"(
SELECT json_build_object(
         'item_id', i.item_id, 'external_id', i.external_id, 'sample_ts', i.sample_ts,
         'labels', i.labels, 'annotators', coalesce(a.annotators, '{}'),
         'labeled_at', a.labeled_at)::text
FROM labeling.v_items i
LEFT JOIN LATERAL (
  SELECT array_agg(l.annotator ORDER BY l.annotator) AS annotators,
         max(l.updated_at) AS labeled_at
  FROM labeling.v_labels l WHERE l.item_id = i.item_id OFFSET 0) a ON true
WHERE i.project_id = $1 AND i.labeled
ORDER BY i.item_id)";

constexpr const char* kTimestampsSql = R"(
SELECT json_build_object(
         'item_id', i.item_id, 'external_id', i.external_id, 'sample_ts', i.sample_ts,
         'labeled', i.labeled, 'annotator', l.annotator, 'label_classes', l.classes,
         'submitted_at', l.created_at, 'updated_at', l.updated_at,
         'seconds_spent', l.seconds_spent)::text
FROM labeling.v_items i
LEFT JOIN LATERAL (
  SELECT l.annotator, l.classes, l.created_at, l.updated_at, l.seconds_spent
  FROM labeling.v_labels l WHERE l.item_id = i.item_id ORDER BY l.annotator OFFSET 0) l ON true
WHERE i.project_id = $1
ORDER BY i.item_id)";

// Machine labels from the stored predictions, or from the features (the model runs here).
constexpr const char* kStoredPredictionsSql = R"(
SELECT i.item_id, to_json(i.external_id)::text, to_json(i.sample_ts)::text, p.probabilities
FROM labeling.v_items i
JOIN LATERAL (
  SELECT p.probabilities FROM training.v_predictions p
  WHERE p.model_id = $2 AND p.item_id = i.item_id OFFSET 0) p ON true
WHERE i.project_id = $1 AND NOT i.labeled
ORDER BY i.item_id)";

constexpr const char* kFeaturesSql = R"(
SELECT i.item_id, to_json(i.external_id)::text, to_json(i.sample_ts)::text, i.features
FROM labeling.v_items i
WHERE i.project_id = $1 AND NOT i.labeled
ORDER BY i.item_id)";

constexpr const char* kCoverageSql = R"(
SELECT count(*) AS unlabeled,
       count(*) FILTER (WHERE NOT EXISTS (
         SELECT 1 FROM training.v_predictions p
         WHERE p.model_id = $2 AND p.item_id = i.item_id)) AS missing
FROM labeling.v_items i
WHERE i.project_id = $1 AND NOT i.labeled)";

// Pulls a cursor batch by batch and writes a JSON array of records.
class CursorProducer : public EntryProducer {
 public:
  using Formatter = std::function<void(const pqxx::result&, CursorProducer&, std::string*)>;

  CursorProducer(pqxx::transaction_base& tx, std::string name, std::string entry, std::string query,
                 const ExportOptions& options, BuildProgress* progress, Formatter formatter)
      : tx_(tx),
        name_(std::move(name)),
        entry_(std::move(entry)),
        query_(std::move(query)),
        options_(options),
        progress_(progress),
        formatter_(std::move(formatter)) {}

  void Open() override {
    progress_->SetPhase(entry_);
    // Parameters are bound by the server, as in any query; only the queries that
    // mention the model take $2.
    const std::string declare = "DECLARE " + name_ + " NO SCROLL CURSOR FOR " + query_;
    if (query_.find("$2") != std::string::npos) {
      tx_.exec_params(declare, options_.project_id, options_.model_id);
    } else {
      tx_.exec_params(declare, options_.project_id);
    }
    fetch_ = "FETCH FORWARD " + std::to_string(options_.batch_rows) + " FROM " + name_;
  }

  bool Next(std::string* out) override {
    if (progress_->abort.load()) throw ExportAborted("the build was stopped");
    if (!started_) {
      out->push_back('[');
      started_ = true;
    }
    pqxx::result batch = tx_.exec(fetch_);
    if (batch.empty()) {
      out->append(records_ == 0 ? "]\n" : "\n]\n");
      tx_.exec("CLOSE " + name_);
      return false;
    }
    formatter_(batch, *this, out);
    return true;
  }

  // Called by formatters before each record.
  void BeginRecord(std::string* out) {
    out->append(records_ == 0 ? "\n" : ",\n");
    ++records_;
    progress_->rows.fetch_add(1, std::memory_order_relaxed);
  }
  int64_t records() const override { return records_; }

 private:
  pqxx::transaction_base& tx_;
  std::string name_;
  std::string entry_;
  std::string query_;
  const ExportOptions& options_;
  BuildProgress* progress_;
  Formatter formatter_;
  std::string fetch_;
  bool started_ = false;
  int64_t records_ = 0;
};

void FormatJsonRows(const pqxx::result& batch, CursorProducer& p, std::string* out) {
  for (const auto& row : batch) {
    p.BeginRecord(out);
    out->append(row[0].c_str(), row[0].size());
  }
}

// Writes the machine-label records of a batch given its probabilities.
class MachineLabels {
 public:
  MachineLabels(const std::vector<std::string>& classes, bool multi_label)
      : multi_label_(multi_label) {
    for (const auto& c : classes) {
      std::string key;
      AppendJsonString(&key, c);
      quoted_.push_back(key);
      key.push_back(':');
      keys_.push_back(std::move(key));
    }
  }

  void Write(const pqxx::row& row, const float* p, int n, CursorProducer& producer,
             std::string* out) const {
    producer.BeginRecord(out);
    out->append("{\"item_id\":");
    out->append(row[0].c_str(), row[0].size());
    out->append(",\"external_id\":");
    out->append(row[1].c_str(), row[1].size());
    out->append(",\"sample_ts\":");
    out->append(row[2].c_str(), row[2].size());
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

  int classes() const { return static_cast<int>(keys_.size()); }

 private:
  bool multi_label_;
  std::vector<std::string> quoted_;
  std::vector<std::string> keys_;
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

  // Stored predictions are reused only when they cover every unlabeled item.
  auto coverage = tx.exec_params(kCoverageSql, options.project_id, options.model_id);
  const int64_t unlabeled = coverage[0][0].as<int64_t>();
  const int64_t missing = coverage[0][1].as<int64_t>();
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
  const MachineLabels machine(classes, multi_label);

  ZipWriter zip(path, options.deflate_level);
  zip.Add("human_labels.json",
          std::make_unique<CursorProducer>(tx, "ll_human", "human_labels.json", kHumanLabelsSql,
                                           options, progress, FormatJsonRows));
  if (use_stored) {
    zip.Add("machine_labels.json",
            std::make_unique<CursorProducer>(
                tx, "ll_machine", "machine_labels.json", kStoredPredictionsSql, options, progress,
                [&machine](const pqxx::result& batch, CursorProducer& p, std::string* out) {
                  std::vector<float> probs;
                  for (const auto& row : batch) {
                    if (!ParseFloatArray(std::string_view(row[3].c_str(), row[3].size()), &probs) ||
                        static_cast<int>(probs.size()) != machine.classes()) {
                      throw ExportInvalid(
                          "the stored prediction of item " + std::string(row[0].c_str()) + " has " +
                          std::to_string(probs.size()) + " probabilities, the model has " +
                          std::to_string(machine.classes()) + " classes");
                    }
                    machine.Write(row, probs.data(), machine.classes(), p, out);
                  }
                }));
  } else {
    const Classifier& model_fn = *classifier;
    zip.Add(
        "machine_labels.json",
        std::make_unique<CursorProducer>(
            tx, "ll_machine", "machine_labels.json", kFeaturesSql, options, progress,
            [&machine, &model_fn](const pqxx::result& batch, CursorProducer& p, std::string* out) {
              const int dim = model_fn.feature_dim();
              Eigen::MatrixXf x(static_cast<Eigen::Index>(batch.size()), dim);
              std::vector<float> features;
              for (Eigen::Index r = 0; r < x.rows(); ++r) {
                const auto& field = batch[static_cast<pqxx::row::size_type>(r)][3];
                if (!ParseFloatArray(std::string_view(field.c_str(), field.size()), &features) ||
                    static_cast<int>(features.size()) != dim) {
                  throw ExportInvalid("item " + std::string(batch[static_cast<int>(r)][0].c_str()) +
                                      " has " + std::to_string(features.size()) +
                                      " features, the model expects " + std::to_string(dim));
                }
                x.row(r) = Eigen::Map<const Eigen::RowVectorXf>(features.data(), dim);
              }
              // Row-major so that each item's probabilities are contiguous.
              Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> probs =
                  model_fn.Predict(x);
              for (Eigen::Index r = 0; r < x.rows(); ++r) {
                machine.Write(batch[static_cast<int>(r)], probs.row(r).data(),
                              static_cast<int>(probs.cols()), p, out);
              }
            }));
  }
  zip.Add("timestamps.json",
          std::make_unique<CursorProducer>(tx, "ll_stamps", "timestamps.json", kTimestampsSql,
                                           options, progress, FormatJsonRows));
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
