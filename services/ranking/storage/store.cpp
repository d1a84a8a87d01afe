#include "services/ranking/storage/store.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "common/prediction_chunks/prediction_chunks.hpp"
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

namespace {

struct ChunkListing {
  int64_t chunk = 0;
  int64_t rows = 0;
};

// One binary COPY of the model's chunks [first, last] into the rows of `m` from `row`
// (the chunks' offset): item ids and probabilities are copied as stored, after checking
// each chunk's lengths and id order.
void CopyChunks(const std::string& url, const ModelInfo& model,
                std::span<const ChunkListing> chunks, size_t row, PredictionMatrix& m) {
  Connection conn(url);
  // COPY takes no parameters; the ids are integers we format ourselves.
  const std::string sql =
      "COPY (SELECT chunk::bigint, row_count::bigint, item_ids, probabilities "
      "FROM training.v_prediction_chunks WHERE model_id = " +
      std::to_string(model.model_id) + " AND chunk BETWEEN " +
      std::to_string(chunks.front().chunk) + " AND " + std::to_string(chunks.back().chunk) +
      " ORDER BY chunk) TO STDOUT (FORMAT binary)";
  const auto k = static_cast<size_t>(model.classes);
  std::optional<int64_t> previous_last;
  size_t next = 0;
  conn.CopyOut(sql, [&](std::span<const Field> f) {
    const int64_t chunk = pg::binary::Int8(f[0].bytes());
    const int64_t rows = pg::binary::Int8(f[1].bytes());
    if (f[2].len < 0 || f[3].len < 0) throw std::runtime_error("prediction chunk: NULL bytes");
    const std::string_view ids(f[2].data, static_cast<size_t>(f[2].len));
    const std::string error =
        prediction_chunks::CheckChunk(model.model_id, chunk, rows, ids,
                                      static_cast<size_t>(f[3].len), model.classes, previous_last);
    if (!error.empty()) throw std::runtime_error("stored predictions are corrupt: " + error);
    if (next >= chunks.size() || chunks[next].chunk != chunk || chunks[next].rows != rows) {
      throw std::runtime_error("the predictions of model " + std::to_string(model.model_id) +
                               " changed while being read (chunk " + std::to_string(chunk) + ")");
    }
    ++next;
    const auto n = static_cast<size_t>(rows);
    prediction_chunks::UnpackItemIds(ids, m.ids.data() + row);
    prediction_chunks::UnpackProbabilities(
        std::string_view(f[3].data, static_cast<size_t>(f[3].len)),
        m.probabilities.data() + row * k);
    if (n > 0) previous_last = m.ids[row + n - 1];
    row += n;
  });
  if (next != chunks.size()) {
    throw std::runtime_error("the predictions of model " + std::to_string(model.model_id) +
                             " changed while being read (chunks missing)");
  }
}

}  // namespace

PredictionMatrix Store::LoadPredictions(const ModelInfo& model, int connections,
                                        int64_t rows_per_connection) {
  auto listing = pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    std::vector<ChunkListing> out;
    for (const auto& r : tx.exec_params(
             "SELECT chunk, row_count FROM training.v_prediction_chunks WHERE model_id = $1 "
             "ORDER BY chunk",
             model.model_id)) {
      out.push_back({r[0].as<int64_t>(), r[1].as<int64_t>()});
    }
    return out;
  });
  PredictionMatrix m;
  m.classes = model.classes;
  // Offsets of each chunk's rows; a row_count outside [0, 65536] is reported by the check.
  std::vector<size_t> offsets(listing.size() + 1, 0);
  for (size_t i = 0; i < listing.size(); ++i) {
    const int64_t rows = listing[i].rows;
    if (rows < 0 || static_cast<size_t>(rows) > prediction_chunks::kMaxRowsPerChunk) {
      throw std::runtime_error("stored predictions are corrupt: model " +
                               std::to_string(model.model_id) + ", prediction chunk " +
                               std::to_string(listing[i].chunk) + ": row_count " +
                               std::to_string(rows));
    }
    offsets[i + 1] = offsets[i] + static_cast<size_t>(rows);
  }
  const size_t total = offsets.back();
  if (listing.empty()) return m;
  m.ids.resize(total);
  m.probabilities.resize(total * static_cast<size_t>(std::max(model.classes, 0)));
  // Consecutive chunk ranges, one per connection, each of at least rows_per_connection rows.
  const auto per_chunk = static_cast<int64_t>(prediction_chunks::kMaxRowsPerChunk);
  const int64_t min_chunks =
      std::max<int64_t>(1, (std::max<int64_t>(1, rows_per_connection) + per_chunk - 1) / per_chunk);
  const int parts = static_cast<int>(std::clamp<int64_t>(
      static_cast<int64_t>(listing.size()) / min_chunks, 1, std::max(1, connections)));
  std::vector<std::exception_ptr> errors(parts);
  std::vector<std::thread> threads;
  const std::span<const ChunkListing> all(listing);
  for (int i = 0; i < parts; ++i) {
    const size_t a = listing.size() * static_cast<size_t>(i) / static_cast<size_t>(parts);
    const size_t b = listing.size() * static_cast<size_t>(i + 1) / static_cast<size_t>(parts);
    auto work = [&, i, a, b] {
      try {
        CopyChunks(url_, model, all.subspan(a, b - a), offsets[a], m);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    };
    if (i + 1 == parts) {
      work();
    } else {
      threads.emplace_back(work);
    }
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  // Each part checked its own ids; the parts must ascend too.
  for (int i = 1; i < parts; ++i) {
    const size_t a = offsets[listing.size() * static_cast<size_t>(i) / static_cast<size_t>(parts)];
    if (a > 0 && a < total && m.ids[a] <= m.ids[a - 1]) {
      throw std::runtime_error("stored predictions are corrupt: model " +
                               std::to_string(model.model_id) + ": item id " +
                               std::to_string(m.ids[a]) + " follows " +
                               std::to_string(m.ids[a - 1]) + " across chunks: ids must ascend");
    }
  }
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
  static_assert(std::endian::native == std::endian::little, "packed scores are little-endian");
  constexpr size_t kChunk = 65536;
  Connection conn(url_);
  const auto& model = table.model();
  const std::string project = std::to_string(model.project_id);
  conn.Exec("BEGIN");
  conn.Exec("DELETE FROM ranking.score_chunks WHERE project_id = $1", {project});
  const auto ids = table.ids();
  size_t start = 0;
  int32_t chunk = 0;
  std::string scores;
  conn.CopyIn(
      "COPY ranking.score_chunks (project_id, model_id, chunk, items, item_ids, scores) "
      "FROM STDIN (FORMAT binary)",
      [&](pg::binary::CopyEncoder& w) {
        if (start >= ids.size()) return false;
        const size_t n = std::min(kChunk, ids.size() - start);
        scores.resize(n * kBaseStrategies * sizeof(float));
        auto* out = reinterpret_cast<float*>(scores.data());
        for (size_t r = 0; r < n; ++r) {
          for (int b = 0; b < kBaseStrategies; ++b) {
            out[r * kBaseStrategies + b] = table.scores(b)[start + r];
          }
        }
        w.BeginTuple(6);
        w.Int64(model.project_id);
        w.Int64(model.model_id);
        w.Int32(chunk++);
        w.Int32(static_cast<int32_t>(n));
        w.Text(std::string_view(reinterpret_cast<const char*>(ids.data() + start),
                                n * sizeof(int64_t)));
        w.Text(scores);
        start += n;
        return start < ids.size();
      });
  conn.Exec(
      R"sql(
    INSERT INTO ranking.orders (project_id, model_id, model_version, multi_label,
                                multilabel_aggregate, random_seed, items, rejected_items)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (project_id) DO UPDATE SET model_id = EXCLUDED.model_id,
      model_version = EXCLUDED.model_version, multi_label = EXCLUDED.multi_label,
      multilabel_aggregate = EXCLUDED.multilabel_aggregate,
      random_seed = EXCLUDED.random_seed, items = EXCLUDED.items,
      rejected_items = EXCLUDED.rejected_items, built_at = now())sql",
      {project, std::to_string(model.model_id), std::to_string(model.version),
       model.multi_label ? "true" : "false", AggregateName(table.aggregate()),
       std::to_string(random_seed), std::to_string(ids.size()), std::to_string(table.rejected())});
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
      "COPY (SELECT items, item_ids, scores FROM ranking.score_chunks WHERE project_id = " +
      std::to_string(project_id) + " AND model_id = " + std::to_string(model_id) +
      " ORDER BY chunk) TO STDOUT (FORMAT binary)";
  conn.CopyOut(sql, [&](std::span<const Field> f) {
    if (f[0].len != 4) throw std::runtime_error("score_chunks.items: not an integer");
    const auto n = static_cast<size_t>(static_cast<uint32_t>(pg::binary::Int4(f[0].bytes())));
    if (f[1].len != static_cast<int32_t>(n * sizeof(int64_t)) ||
        f[2].len != static_cast<int32_t>(n * kBaseStrategies * sizeof(float))) {
      throw std::runtime_error("score_chunks: a chunk's sizes do not match its item count");
    }
    const size_t id_base = ids.size(), score_base = scores4.size();
    ids.resize(id_base + n);
    scores4.resize(score_base + n * kBaseStrategies);
    std::memcpy(ids.data() + id_base, f[1].data, n * sizeof(int64_t));
    std::memcpy(scores4.data() + score_base, f[2].data, n * kBaseStrategies * sizeof(float));
  });
}

}  // namespace labelloop::ranking::storage
