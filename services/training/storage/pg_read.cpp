#include "services/training/storage/pg_read.hpp"

#include <charconv>
#include <unordered_map>

namespace labelloop::training::storage {
namespace {

std::vector<std::string> TextArray(const pqxx::field& f) {
  std::vector<std::string> out;
  if (f.is_null()) return out;
  auto parser = f.as_array();
  for (;;) {
    auto [kind, value] = parser.get_next();
    if (kind == pqxx::array_parser::done) break;
    if (kind == pqxx::array_parser::string_value) out.push_back(std::move(value));
  }
  return out;
}

}  // namespace

bool ParseRealArray(std::string_view text, std::vector<float>* out) {
  out->clear();
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return false;
  const char* p = text.data() + 1;
  const char* end = text.data() + text.size() - 1;
  while (p < end) {
    float v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc()) {
      // NaN / Infinity spellings and NULLs are not usable features.
      return false;
    }
    out->push_back(v);
    p = next;
    if (p < end) {
      if (*p != ',') return false;
      ++p;
    }
  }
  return true;
}

std::optional<Project> LoadProject(pg::Pool& pool, int64_t project_id) {
  return pool.Run([&](pqxx::connection& c) -> std::optional<Project> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        "SELECT label_kind, classes, settings::text FROM labeling.v_projects "
        "WHERE project_id = $1",
        project_id);
    if (r.empty()) return std::nullopt;
    Project p;
    p.id = project_id;
    p.multi_label = r[0][0].as<std::string>() == "multi";
    p.classes = TextArray(r[0][1]);
    p.settings = nlohmann::json::parse(r[0][2].c_str(), nullptr, false);
    if (p.settings.is_discarded()) p.settings = nlohmann::json::object();
    return p;
  });
}

std::vector<std::pair<std::string, int64_t>> LabelCounts(pg::Pool& pool, int64_t project_id) {
  return pool.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        "SELECT l, count(*) FROM labeling.v_items, unnest(labels) AS l "
        "WHERE project_id = $1 AND labeled GROUP BY l",
        project_id);
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& row : r) out.emplace_back(row[0].as<std::string>(), row[1].as<int64_t>());
    return out;
  });
}

int64_t LabeledCount(pg::Pool& pool, int64_t project_id) {
  return pool.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return tx
        .exec_params1("SELECT count(*) FROM labeling.v_items WHERE project_id = $1 AND labeled",
                      project_id)[0]
        .as<int64_t>();
  });
}

void StreamItems(pg::Pool& pool, int64_t project_id, bool labeled, int batch_rows,
                 const std::function<bool(const ItemBatch&)>& fn) {
  pool.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    // DECLARE takes no bind parameters; both values are integers we format ourselves.
    tx.exec(
        "DECLARE items_cur NO SCROLL CURSOR FOR SELECT item_id, features, labels "
        "FROM labeling.v_items WHERE project_id = " +
        tx.quote(project_id) +
        // Each walks the project's own range of a partial index (labeling's migration 0007):
        // items_labeled_idx by item_id, items_claim_idx by item_id + 0.
        (labeled ? " AND labeled ORDER BY item_id" : " AND unlabeled ORDER BY item_id + 0"));
    const std::string fetch = "FETCH FORWARD " + std::to_string(batch_rows) + " FROM items_cur";
    ItemBatch batch;
    for (;;) {
      auto r = tx.exec(fetch);
      if (r.empty()) break;
      batch.item_ids.resize(r.size());
      batch.features.resize(r.size());
      batch.labels.resize(r.size());
      for (size_t i = 0; i < r.size(); ++i) {
        batch.item_ids[i] = r[i][0].as<int64_t>();
        if (r[i][1].is_null() || !ParseRealArray(std::string_view(r[i][1].c_str(), r[i][1].size()),
                                                 &batch.features[i])) {
          batch.features[i].clear();
        }
        batch.labels[i] = labeled ? TextArray(r[i][2]) : std::vector<std::string>{};
      }
      if (!fn(batch)) break;
    }
    tx.exec("CLOSE items_cur");
    return 0;
  });
}

LoadResult LoadLabeled(pg::Pool& pool, const Project& project,
                       const std::function<bool()>& should_stop) {
  LoadResult out;
  Dataset& d = out.data;
  d.multi_label = project.multi_label;
  d.classes = project.classes;
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < project.classes.size(); ++i)
    index[project.classes[i]] = static_cast<int>(i);
  std::vector<float> xs;  // column-major features, grown as batches arrive
  std::vector<std::vector<int>> targets;
  int dim = -1;
  StreamItems(pool, project.id, /*labeled=*/true, 2000, [&](const ItemBatch& b) {
    for (size_t i = 0; i < b.item_ids.size(); ++i) {
      std::vector<int> t;
      for (const auto& name : b.labels[i]) {
        auto it = index.find(name);
        if (it != index.end()) t.push_back(it->second);
      }
      if (t.empty() || (!d.multi_label && t.size() != 1)) {
        ++out.skipped;  // no usable consensus (unknown class, or a tie in single-label)
        continue;
      }
      const auto& f = b.features[i];
      if (dim < 0) dim = static_cast<int>(f.size());
      if (f.empty() || static_cast<int>(f.size()) != dim) {
        out.error = "item " + std::to_string(b.item_ids[i]) + " has " + std::to_string(f.size()) +
                    " usable features where the project's other items have " + std::to_string(dim);
        return false;
      }
      xs.insert(xs.end(), f.begin(), f.end());
      targets.push_back(std::move(t));
      out.item_ids.push_back(b.item_ids[i]);
    }
    return !(should_stop && should_stop());
  });
  if (!out.error.empty()) return out;
  const auto n = static_cast<Eigen::Index>(targets.size());
  d.x = Eigen::Map<Eigen::MatrixXf>(xs.data(), std::max(dim, 0), n);
  d.y = Eigen::MatrixXf::Zero(static_cast<Eigen::Index>(d.classes.size()), n);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (int c : targets[static_cast<size_t>(i)]) d.y(c, i) = 1;
    if (!d.multi_label) d.label.push_back(targets[static_cast<size_t>(i)][0]);
  }
  return out;
}

}  // namespace labelloop::training::storage
