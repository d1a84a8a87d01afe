#include "tests/e2e/dl_manager/fixture.hpp"

#include <algorithm>

#include "common/migrate/migrate.hpp"
#include "common/prediction_chunks/pg_write.hpp"

namespace labelloop::labeling {
std::vector<migrate::Migration> Migrations();
}
namespace labelloop::training {
std::vector<migrate::Migration> Migrations();
}

namespace labelloop::dl_manager::testing {

Fixture::Fixture(const std::string& url)
    : pool_(std::make_unique<pg::Pool>(pg::PoolOptions{.url = url, .size = 2})) {
  migrate::Apply(*pool_, "labeling", labeling::Migrations());
  migrate::Apply(*pool_, "training", training::Migrations());
}

nlohmann::json Fixture::ModelJson(int dim) {
  using nlohmann::json;
  json mean = json::array(), std = json::array();
  json weights = json::array();
  for (int d = 0; d < dim; ++d) {
    mean.push_back(0.5 * d);
    std.push_back(d == 1 ? 0.0 : 1.0 + d);  // one constant feature: std 0 counts as 1
  }
  for (int c = 0; c < 3; ++c) {
    json row = json::array();
    for (int d = 0; d < dim; ++d) row.push_back(0.1 * (c + 1) * (d % 2 == 0 ? 1 : -1) + 0.05 * d);
    weights.push_back(row);
  }
  return json{{"format", "labelloop.model.v1"},
              {"model_type", "softmax"},
              {"multi_label", false},
              {"classes", {"a", "b", "c"}},
              {"feature_dim", dim},
              {"standardization", {{"mean", mean}, {"std", std}}},
              {"layers",
               json::array({json{
                   {"weights", weights}, {"bias", {0.1, 0.0, -0.1}}, {"activation", "softmax"}}})},
              {"spec", {{"epochs", 10}}},
              {"metrics", {{"accuracy", 0.9}}}};
}

Seeded Fixture::Seed(const SeedOptions& o) {
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    Seeded s;
    s.project_id =
        tx.exec_params(
              "INSERT INTO labeling.projects (name, data_kind, label_kind, classes, "
              "feature_dim) VALUES ($1, 'tabular', 'single', '{a,b,c}', $2) RETURNING id",
              o.name, o.feature_dim)[0][0]
            .as<int64_t>();
    // Features: deterministic per item; the first `labeled` items are labeled.
    tx.exec_params(
        "INSERT INTO labeling.items (project_id, external_id, sample_ts, features, status, "
        "judgements, consensus) "
        "SELECT $1, 'ext-' || g, timestamptz '2024-03-01 00:00:00+00' + g * interval '1 minute', "
        "  (SELECT array_agg(((g * 7 + d * 3) % 11)::real / 4 - 1 ORDER BY d) "
        "   FROM generate_series(1, $4) d), "
        "  CASE WHEN g <= $3 THEN 'labeled' ELSE 'unlabeled' END, "
        "  CASE WHEN g <= $3 THEN 1 ELSE 0 END, "
        "  CASE WHEN g <= $3 THEN ARRAY[(ARRAY['a','b','c'])[g % 3 + 1]] END "
        "FROM generate_series(1, $2) g",
        s.project_id, o.items, o.labeled, o.feature_dim);
    tx.exec_params(
        "INSERT INTO labeling.labels (item_id, project_id, annotator, classes, seconds_spent, "
        "created_at, updated_at) "
        "SELECT id, project_id, 'ann-1', consensus, 2.5, "
        "  timestamptz '2024-04-01 00:00:00+00' + id * interval '1 second', "
        "  timestamptz '2024-04-02 00:00:00+00' + id * interval '1 second' "
        "FROM labeling.items WHERE project_id = $1 AND status = 'labeled'",
        s.project_id);
    tx.exec_params(
        "INSERT INTO labeling.labels (item_id, project_id, annotator, classes, seconds_spent) "
        "SELECT id, project_id, 'ann-2', consensus, 4 FROM labeling.items "
        "WHERE project_id = $1 AND status = 'labeled' AND id % $2 = 0",
        s.project_id, o.second_annotator_every);
    s.model_id =
        tx.exec_params(
              "INSERT INTO training.models (project_id, version, model_type, "
              "multi_label, classes, model_json, metrics, labeled_items, "
              "predictions_ready) VALUES ($1, 1, 'softmax', false, '{a,b,c}', $2, "
              "'{\"accuracy\": 0.9}', $3, $4) RETURNING id",
              s.project_id, ModelJson(o.feature_dim).dump(), o.labeled, o.predictions)[0][0]
            .as<int64_t>();
    if (o.predictions) {
      // Packed chunks as training writes them: p = (id % 10 / 20, 0.25, 0.75 - id % 10 / 20).
      prediction_chunks::ChunkPacker packer(3, o.rows_per_chunk);
      int32_t chunk = 0;
      auto write = [&] {
        prediction_chunks::InsertChunk(tx, s.model_id, chunk++, packer);
        packer.Clear();
      };
      for (const auto& row : tx.exec_params("SELECT id FROM labeling.items WHERE project_id = $1 "
                                            "AND status = 'unlabeled' ORDER BY id",
                                            s.project_id)) {
        const auto id = row[0].as<int64_t>();
        if (std::find(o.without_prediction.begin(), o.without_prediction.end(), id) !=
            o.without_prediction.end()) {
          continue;
        }
        const float p[] = {static_cast<float>(id % 10) / 20, 0.25f,
                           0.75f - static_cast<float>(id % 10) / 20};
        packer.Add(id, p);
        if (packer.full()) write();
      }
      if (!packer.empty()) write();
    }
    tx.commit();
    return s;
  });
}

int64_t Fixture::Count(const std::string& sql) {
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return tx.exec(sql)[0][0].as<int64_t>();
  });
}

}  // namespace labelloop::dl_manager::testing
