#include "tests/e2e/ranking/fixture.hpp"

#include <cstdio>
#include <stdexcept>

#include "common/migrate/migrate.hpp"
#include "common/prediction_chunks/pg_write.hpp"

namespace labelloop {
namespace e2e_labeling {
std::vector<migrate::Migration> Migrations();
}
namespace e2e_training {
std::vector<migrate::Migration> Migrations();
}
}  // namespace labelloop

namespace labelloop::ranking_e2e {

std::string ArrayLiteral(const std::vector<float>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v[i]));
    if (i) s += ',';
    s += buf;
  }
  return s + "}";
}

std::string ArrayLiteral(const std::vector<std::string>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += "\"" + v[i] + "\"";
  }
  return s + "}";
}

World::World(const std::string& admin_url) : db_(admin_url) {
  pg::Pool pool({.url = db_.url(), .size = 1});
  migrate::Apply(pool, "labeling", e2e_labeling::Migrations());
  migrate::Apply(pool, "training", e2e_training::Migrations());
  conn_ = std::make_unique<pqxx::connection>(db_.url());
}

int64_t World::CreateProject(const std::string& label_kind, const std::vector<std::string>& classes,
                             const std::string& settings_json) {
  pqxx::work tx(*conn_);
  auto r = tx.exec_params(
      "INSERT INTO labeling.projects (name, data_kind, label_kind, classes, settings) "
      "VALUES ('p', 'tabular', $1, $2::text[], $3::jsonb) RETURNING id",
      label_kind, ArrayLiteral(classes), settings_json);
  tx.commit();
  return r[0][0].as<int64_t>();
}

std::vector<int64_t> World::AddItems(int64_t project_id,
                                     const std::vector<std::vector<float>>& features) {
  pqxx::work tx(*conn_);
  std::vector<int64_t> ids;
  int n = 0;
  for (const auto& f : features) {
    auto r = tx.exec_params(
        "INSERT INTO labeling.items (project_id, external_id, features) "
        "VALUES ($1, $2, $3::real[]) RETURNING id",
        project_id, "x" + std::to_string(project_id) + "_" + std::to_string(n++), ArrayLiteral(f));
    ids.push_back(r[0][0].as<int64_t>());
  }
  tx.commit();
  return ids;
}

int64_t World::AddModel(int64_t project_id, int version, bool multi_label,
                        const std::vector<std::string>& classes, bool ready) {
  pqxx::work tx(*conn_);
  auto r = tx.exec_params(
      "INSERT INTO training.models (project_id, version, model_type, multi_label, classes, "
      "model_json, predictions_ready) VALUES ($1, $2, 'logistic', $3, $4::text[], '{}', $5) "
      "RETURNING id",
      project_id, version, multi_label, ArrayLiteral(classes), ready);
  tx.commit();
  return r[0][0].as<int64_t>();
}

void World::SetReady(int64_t model_id) {
  pqxx::work tx(*conn_);
  tx.exec_params("UPDATE training.models SET predictions_ready = true WHERE id = $1", model_id);
  tx.commit();
}

void World::AddPredictions(int64_t model_id, const std::vector<int64_t>& items,
                           const std::vector<std::vector<float>>& probabilities,
                           size_t rows_per_chunk) {
  // Packed as training writes them (items must ascend).
  const int classes = ClassCount(model_id);
  prediction_chunks::ChunkPacker packer(classes, rows_per_chunk);
  pqxx::work tx(*conn_);
  int32_t chunk = 0;
  auto write = [&] {
    prediction_chunks::InsertChunk(tx, model_id, chunk++, packer);
    packer.Clear();
  };
  for (size_t i = 0; i < items.size(); ++i) {
    if (probabilities[i].size() != static_cast<size_t>(classes)) {
      throw std::invalid_argument("fixture: a prediction row needs one value per class");
    }
    packer.Add(items[i], probabilities[i].data());
    if (packer.full()) write();
  }
  if (!packer.empty()) write();
  tx.commit();
}

int World::ClassCount(int64_t model_id) {
  pqxx::work tx(*conn_);
  return tx
      .exec_params1("SELECT coalesce(cardinality(classes), 0) FROM training.models WHERE id = $1",
                    model_id)[0]
      .as<int>();
}

void World::MarkLabeled(int64_t item_id) {
  pqxx::work tx(*conn_);
  tx.exec_params(
      "UPDATE labeling.items SET status = 'labeled', judgements = 1, consensus = "
      "ARRAY[(SELECT classes[1] FROM labeling.projects p WHERE p.id = items.project_id)] "
      "WHERE id = $1",
      item_id);
  tx.commit();
}

void World::Exec(const std::string& sql) {
  pqxx::work tx(*conn_);
  tx.exec(sql);
  tx.commit();
}

}  // namespace labelloop::ranking_e2e
