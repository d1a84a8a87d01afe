#include "services/ranking/storage/store.hpp"

#include <charconv>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "services/ranking/storage/pg_copy.hpp"

namespace labelloop::ranking::storage {
namespace {

constexpr const char* kLatestModels = R"sql(
  SELECT DISTINCT ON (project_id) model_id, project_id, version, multi_label,
         coalesce(cardinality(classes), 0)
  FROM training.v_models WHERE predictions_ready
  ORDER BY project_id, version DESC)sql";

constexpr const char* kLatestModel = R"sql(
  SELECT model_id, project_id, version, multi_label, coalesce(cardinality(classes), 0)
  FROM training.v_models WHERE predictions_ready AND project_id = $1
  ORDER BY version DESC LIMIT 1)sql";

constexpr const char* kProjectSettings = R"sql(
  SELECT p.label_kind, p.settings->>'strategy', p.settings->>'multilabel_aggregate',
         s.strategy, s.multilabel_aggregate
  FROM (SELECT $1::bigint AS project_id) q
  LEFT JOIN labeling.v_projects p ON p.project_id = q.project_id
  LEFT JOIN ranking.project_strategy s ON s.project_id = q.project_id)sql";

constexpr const char* kSaveStrategy = R"sql(
  INSERT INTO ranking.project_strategy (project_id, strategy, multilabel_aggregate)
  VALUES ($1, $2, $3)
  ON CONFLICT (project_id) DO UPDATE SET strategy = EXCLUDED.strategy,
    multilabel_aggregate = coalesce(EXCLUDED.multilabel_aggregate,
                                    ranking.project_strategy.multilabel_aggregate),
    updated_at = now())sql";

constexpr const char* kLabeled =
    "SELECT item_id FROM labeling.v_items WHERE project_id = $1 AND labeled";
constexpr const char* kLabeledAmong =
    "SELECT item_id FROM labeling.v_items WHERE item_id = ANY($1::bigint[]) AND labeled";
constexpr const char* kFeatures =
    "SELECT item_id, features FROM labeling.v_items WHERE item_id = ANY($1::bigint[])";
constexpr const char* kSavedOrder = R"sql(
  SELECT model_id, multilabel_aggregate, random_seed, rejected_items
  FROM ranking.orders WHERE project_id = $1)sql";

std::string IdArray(const std::vector<int64_t>& ids) {
  std::string s = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "}";
}

ModelInfo ModelOf(const pqxx::row& r) {
  return {.project_id = r[1].as<int64_t>(),
          .model_id = r[0].as<int64_t>(),
          .version = r[2].as<int32_t>(),
          .multi_label = r[3].as<bool>(),
          .classes = r[4].as<int>()};
}

// Parses a real[] in PostgreSQL's text form ({1,2.5,-3e-05}); false when malformed.
bool ParseRealArray(std::string_view text, std::vector<float>& out) {
  out.clear();
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return false;
  const char* p = text.data() + 1;
  const char* end = text.data() + text.size() - 1;
  while (p < end) {
    float v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc()) return false;
    out.push_back(v);
    p = next;
    if (p < end && *p == ',') ++p;
  }
  return true;
}

}  // namespace

Store::Store(pg::Pool& pool, std::string pg_url) : pool_(pool), url_(std::move(pg_url)) {}

std::vector<ModelInfo> Store::LatestReadyModels() {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    std::vector<ModelInfo> out;
    for (const auto& r : tx.exec(kLatestModels)) out.push_back(ModelOf(r));
    return out;
  });
}

std::optional<ModelInfo> Store::LatestReadyModel(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<ModelInfo> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(kLatestModel, project_id);
    if (r.empty()) return std::nullopt;
    return ModelOf(r[0]);
  });
}

ProjectSettings Store::Settings(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(kProjectSettings, project_id)[0];
    ProjectSettings s;
    s.exists = !r[0].is_null();
    s.multi_label = !r[0].is_null() && r[0].as<std::string>() == "multi";
    s.source = "default";
    if (!r[1].is_null()) {
      if (auto st = ParseStrategy(r[1].as<std::string>())) {
        s.strategy = *st;
        s.source = "project";
      }
    }
    if (!r[2].is_null()) {
      if (auto a = ParseAggregate(r[2].as<std::string>())) s.aggregate = *a;
    }
    if (!r[3].is_null()) {
      if (auto st = ParseStrategy(r[3].as<std::string>())) {
        s.strategy = *st;
        s.source = "ranking";
      }
    }
    if (!r[4].is_null()) {
      if (auto a = ParseAggregate(r[4].as<std::string>())) s.aggregate = *a;
    }
    return s;
  });
}

void Store::SaveStrategy(int64_t project_id, Strategy strategy,
                         std::optional<Aggregate> aggregate) {
  pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    if (aggregate) {
      tx.exec_params(kSaveStrategy, project_id, std::string(StrategyName(strategy)),
                     std::string(AggregateName(*aggregate)));
    } else {
      tx.exec_params(kSaveStrategy, project_id, std::string(StrategyName(strategy)), nullptr);
    }
    tx.commit();
  });
}

PredictionMatrix Store::LoadPredictions(const ModelInfo& model) {
  PredictionMatrix m;
  m.classes = model.classes;
  Connection conn(url_);
  // COPY takes no parameters; the model id is an integer we format ourselves.
  const std::string sql =
      "COPY (SELECT item_id, probabilities FROM training.v_predictions WHERE model_id = " +
      std::to_string(model.model_id) + " ORDER BY item_id) TO STDOUT (FORMAT binary)";
  const size_t k = static_cast<size_t>(model.classes);
  conn.CopyOut(sql, [&](std::span<const Field> f) {
    const size_t before = m.probabilities.size();
    const int n = AppendFloatArray(f[1], m.probabilities);
    if (n < 0 || static_cast<size_t>(n) != k) {
      // A row with the wrong number of classes cannot be scored: count it as rejected by
      // giving it a NaN row, which validation drops.
      m.probabilities.resize(before);
      m.probabilities.resize(before + k, std::numeric_limits<float>::quiet_NaN());
    }
    m.ids.push_back(DecodeInt64(f[0]));
  });
  return m;
}

std::vector<int64_t> Store::LabeledItems(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    std::vector<int64_t> out;
    for (const auto& r : tx.exec_params(kLabeled, project_id)) out.push_back(r[0].as<int64_t>());
    return out;
  });
}

std::vector<int64_t> Store::LabeledAmong(const std::vector<int64_t>& item_ids) {
  if (item_ids.empty()) return {};
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    std::vector<int64_t> out;
    for (const auto& r : tx.exec_params(kLabeledAmong, IdArray(item_ids))) {
      out.push_back(r[0].as<int64_t>());
    }
    return out;
  });
}

std::vector<std::vector<float>> Store::Features(const std::vector<int64_t>& item_ids) {
  std::vector<std::vector<float>> out(item_ids.size());
  if (item_ids.empty()) return out;
  std::unordered_map<int64_t, size_t> index;
  for (size_t i = 0; i < item_ids.size(); ++i) index.emplace(item_ids[i], i);
  pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    for (const auto& r : tx.exec_params(kFeatures, IdArray(item_ids))) {
      auto it = index.find(r[0].as<int64_t>());
      if (it == index.end() || r[1].is_null()) continue;
      std::vector<float> f;
      if (ParseRealArray(r[1].c_str(), f)) out[it->second] = std::move(f);
    }
    return 0;
  });
  return out;
}

void Store::SaveScores(const ScoreTable& table, int64_t random_seed) {
  Connection conn(url_);
  const auto& model = table.model();
  const std::string project = std::to_string(model.project_id);
  conn.Exec("BEGIN");
  conn.Exec("DELETE FROM ranking.item_scores WHERE project_id = $1", {project});
  const std::string model_id = std::to_string(model.model_id);
  size_t row = 0;
  const auto ids = table.ids();
  conn.CopyIn(
      "COPY ranking.item_scores (project_id, model_id, item_id, scores) FROM STDIN "
      "(FORMAT binary)",
      [&](BinaryRowWriter& w) {
        float s[kBaseStrategies];
        for (size_t end = std::min(ids.size(), row + 8192); row < end; ++row) {
          for (int b = 0; b < kBaseStrategies; ++b) s[b] = table.scores(b)[row];
          w.BeginRow(4);
          w.Int64(model.project_id);
          w.Int64(model.model_id);
          w.Int64(ids[row]);
          w.FloatArray(s);
        }
        return row < ids.size();
      });
  conn.Exec(R"sql(
    INSERT INTO ranking.orders (project_id, model_id, model_version, multi_label,
                                multilabel_aggregate, random_seed, items, rejected_items)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (project_id) DO UPDATE SET model_id = EXCLUDED.model_id,
      model_version = EXCLUDED.model_version, multi_label = EXCLUDED.multi_label,
      multilabel_aggregate = EXCLUDED.multilabel_aggregate,
      random_seed = EXCLUDED.random_seed, items = EXCLUDED.items,
      rejected_items = EXCLUDED.rejected_items, built_at = now())sql",
            {project, model_id, std::to_string(model.version), model.multi_label ? "true" : "false",
             AggregateName(table.aggregate()), std::to_string(random_seed),
             std::to_string(ids.size()), std::to_string(table.rejected())});
  conn.Exec("COMMIT");
}

std::optional<SavedOrder> Store::SavedOrderOf(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<SavedOrder> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(kSavedOrder, project_id);
    if (r.empty()) return std::nullopt;
    return SavedOrder{r[0][0].as<int64_t>(), r[0][1].as<std::string>(), r[0][2].as<int64_t>(),
                      r[0][3].as<int64_t>()};
  });
}

void Store::LoadScores(int64_t project_id, int64_t model_id, std::vector<int64_t>& ids,
                       std::vector<float>& scores4) {
  Connection conn(url_);
  const std::string sql =
      "COPY (SELECT item_id, scores FROM ranking.item_scores WHERE project_id = " +
      std::to_string(project_id) + " AND model_id = " + std::to_string(model_id) +
      ") TO STDOUT (FORMAT binary)";
  conn.CopyOut(sql, [&](std::span<const Field> f) {
    const size_t before = scores4.size();
    if (AppendFloatArray(f[1], scores4) != kBaseStrategies) {
      scores4.resize(before);
      return;  // not ours: skip
    }
    ids.push_back(DecodeInt64(f[0]));
  });
}

}  // namespace labelloop::ranking::storage
