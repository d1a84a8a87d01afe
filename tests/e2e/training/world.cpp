#include "tests/e2e/training/world.hpp"

#include <cmath>
#include <random>

#include "common/migrate/migrate.hpp"
#include "common/pg/pool.hpp"

namespace labelloop::training_e2e_labeling {
std::vector<migrate::Migration> Migrations();
}

namespace labelloop::training_e2e {
namespace {

double U01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
double Gauss(std::mt19937_64& rng) {
  return std::sqrt(-2 * std::log(std::max(U01(rng), 1e-300))) *
         std::cos(6.283185307179586 * U01(rng));
}

std::string FloatArray(const std::vector<float>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "}";
}

}  // namespace

Items Blobs(int n, int labeled, int dim, const std::vector<std::string>& classes, uint64_t seed,
            double separation) {
  std::mt19937_64 rng(seed);
  const int k = static_cast<int>(classes.size());
  std::vector<std::vector<double>> centres(k, std::vector<double>(dim));
  for (auto& c : centres) {
    for (auto& v : c) v = Gauss(rng) * separation;
  }
  Items items;
  for (int i = 0; i < n; ++i) {
    const int c = i % k;
    std::vector<float> f(dim);
    for (int d = 0; d < dim; ++d) f[d] = static_cast<float>(centres[c][d] + Gauss(rng));
    items.features.push_back(std::move(f));
    items.labels.push_back(i < labeled ? classes[c] : "");
  }
  return items;
}

World::World(const std::string& admin_url) : db_(admin_url) {
  pg::Pool pool({.url = db_.url(), .size = 1});
  migrate::Apply(pool, "labeling", training_e2e_labeling::Migrations());
  conn_ = std::make_unique<pqxx::connection>(db_.url());
}

int64_t World::CreateProject(const std::string& label_kind,
                             const std::vector<std::string>& classes) {
  pqxx::work tx(*conn_);
  std::string arr = "{";
  for (size_t i = 0; i < classes.size(); ++i) arr += (i ? "," : "") + classes[i];
  arr += "}";
  auto r = tx.exec_params1(
      "INSERT INTO labeling.projects (name, data_kind, label_kind, classes) "
      "VALUES ('p', 'tabular', $1, $2::text[]) RETURNING id",
      label_kind, arr);
  tx.commit();
  return r[0].as<int64_t>();
}

std::vector<int64_t> World::AddItems(int64_t project_id, const Items& items) {
  pqxx::work tx(*conn_);
  const int first = next_external_;
  {
    pqxx::stream_to copy(tx, "labeling.items",
                         std::vector<std::string>{"project_id", "external_id", "features", "status",
                                                  "judgements", "consensus"});
    for (size_t i = 0; i < items.features.size(); ++i) {
      const bool labeled = !items.labels[i].empty();
      copy << std::make_tuple(project_id, "x" + std::to_string(next_external_++),
                              FloatArray(items.features[i]), labeled ? "labeled" : "unlabeled",
                              labeled ? 1 : 0,
                              labeled ? "{" + items.labels[i] + "}" : std::string("{}"));
    }
    copy.complete();
  }
  // Unlabeled items carry no consensus (NULL), as in the labeling service.
  tx.exec_params(
      "UPDATE labeling.items SET consensus = NULL WHERE project_id = $1 AND status = "
      "'unlabeled'",
      project_id);
  auto r = tx.exec_params(
      "SELECT id FROM labeling.items WHERE project_id = $1 AND external_id = ANY($2::text[]) "
      "ORDER BY id",
      project_id, [&] {
        std::string s = "{";
        for (int i = first; i < next_external_; ++i)
          s += (i > first ? ",x" : "x") + std::to_string(i);
        return s + "}";
      }());
  tx.commit();
  std::vector<int64_t> ids;
  for (const auto& row : r) ids.push_back(row[0].as<int64_t>());
  return ids;
}

pqxx::result World::Query(const std::string& sql) {
  pqxx::work tx(*conn_);
  auto r = tx.exec(sql);
  tx.commit();
  return r;
}

int64_t World::Count(const std::string& sql) { return Query(sql)[0][0].as<int64_t>(); }

}  // namespace labelloop::training_e2e
