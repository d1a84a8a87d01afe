#include "services/labeling/storage/query_store.hpp"

#include <map>

#include "services/labeling/storage/pg_util.hpp"

namespace labelloop::labeling::storage {

namespace {

constexpr const char* kItemColumns =
    "i.id, i.project_id, i.external_id, "
    "(extract(epoch FROM i.sample_ts) * 1000000)::bigint, i.status, i.judgements, "
    "array_to_json(i.consensus)::text, i.consensus_tie, "
    "(extract(epoch FROM i.created_at) * 1000000)::bigint";

ItemRecord ItemFromRow(const pqxx::row& r) {
  ItemRecord it;
  it.id = r[0].as<int64_t>();
  it.project_id = r[1].as<int64_t>();
  it.external_id = r[2].as<std::string>();
  if (!r[3].is_null()) it.sample_ts_us = r[3].as<int64_t>();
  it.status = r[4].as<std::string>();
  it.judgements = r[5].as<int>();
  it.consensus = JsonStrings(r[6]);
  it.consensus_tie = r[7].as<bool>();
  it.created_at_us = r[8].as<int64_t>();
  return it;
}

std::string OptionalMicros(const std::optional<int64_t>& us) {
  return us ? std::to_string(*us) : std::string();
}

}  // namespace

Outcome<StatsRecord> QueryStore::Stats(int64_t project_id) {
  return Guarded<StatsRecord>(pool_, "GetStats", [&](pqxx::connection& c) {
    // One snapshot for every figure, so they add up.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
    if (tx.exec_params("SELECT 1 FROM labeling.projects WHERE id = $1", project_id).empty()) {
      return Outcome<StatsRecord>(NotFound("project_id: no project " + std::to_string(project_id)));
    }
    StatsRecord s;
    auto counts = tx.exec_params1(
        "SELECT count(*), count(*) FILTER (WHERE status = 'labeled'), "
        "count(*) FILTER (WHERE status = 'labeled' AND consensus_tie) "
        "FROM labeling.items WHERE project_id = $1",
        project_id);
    s.total = counts[0].as<int64_t>();
    s.labeled = counts[1].as<int64_t>();
    s.ties = counts[2].as<int64_t>();
    s.under_lease = tx.exec_params1(
                          "SELECT count(DISTINCT item_id) FROM labeling.leases "
                          "WHERE project_id = $1 AND expires_at > clock_timestamp()",
                          project_id)[0]
                        .as<int64_t>();
    for (const auto& r :
         tx.exec_params("SELECT c, count(*) FROM labeling.items, unnest(consensus) AS c "
                        "WHERE project_id = $1 AND status = 'labeled' GROUP BY c ORDER BY c",
                        project_id)) {
      s.per_class.emplace_back(r[0].as<std::string>(), r[1].as<int64_t>());
    }
    for (const auto& r :
         tx.exec_params("SELECT annotator, count(*), percentile_cont(0.5) WITHIN GROUP "
                        "(ORDER BY seconds_spent) FROM labeling.labels WHERE project_id = $1 "
                        "GROUP BY annotator ORDER BY annotator",
                        project_id)) {
      s.per_annotator.push_back({r[0].as<std::string>(), r[1].as<int64_t>(), r[2].as<double>()});
    }
    s.labels_last_hour = tx.exec_params1(
                               "SELECT count(*) FROM labeling.labels WHERE project_id = $1 AND "
                               "created_at > now() - interval '1 hour'",
                               project_id)[0]
                             .as<int64_t>();
    // Agreement: the labels of items with at least two judgements.
    auto k = tx.exec_params1("SELECT judgements_per_item FROM labeling.projects WHERE id = $1",
                             project_id)[0]
                 .as<int>();
    std::map<int64_t, std::vector<Rating>> by_item;
    for (const auto& r :
         tx.exec_params("SELECT l.item_id, l.annotator, array_to_json(l.classes)::text "
                        "FROM labeling.labels l JOIN labeling.items i ON i.id = l.item_id "
                        "WHERE l.project_id = $1 AND i.judgements >= 2",
                        project_id)) {
      by_item[r[0].as<int64_t>()].push_back(
          {r[1].as<std::string>(), CategoryOf(JsonStrings(r[2]))});
    }
    std::vector<std::vector<Rating>> items;
    std::vector<std::vector<std::string>> full;
    for (auto& [id, ratings] : by_item) {
      if (static_cast<int>(ratings.size()) == k) {
        std::vector<std::string> cats;
        for (const auto& r : ratings) cats.push_back(r.category);
        full.push_back(std::move(cats));
      }
      items.push_back(std::move(ratings));
    }
    s.pairs = PairwiseCohen(items);
    if (k > 2) s.fleiss_kappa = FleissKappa(full);
    return Outcome<StatsRecord>(std::move(s));
  });
}

Outcome<std::vector<ItemRecord>> QueryStore::ListItems(const ItemFilter& f, int64_t after_id,
                                                       int limit) {
  return Guarded<std::vector<ItemRecord>>(pool_, "ListItems", [&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    const char* null = nullptr;
    const std::string from = OptionalMicros(f.from_us);
    const std::string to = OptionalMicros(f.to_us);
    const char* time_column = f.sample_time ? "i.sample_ts" : "i.created_at";
    // Unnamed statements are planned with the actual values, so the unused filters
    // fold away and an index serves the keyset order: items_labeled_idx for labeled
    // items, items_claim_idx for unlabeled ones (its key is id + 0, hence the order on
    // that expression, same order), the primary key otherwise.
    const char* key = f.status == "unlabeled" ? "(i.id + 0)" : "i.id";
    std::string sql = std::string("SELECT ") + kItemColumns +
                      " FROM labeling.items i WHERE i.project_id = $1 AND " + key +
                      " > $2 "
                      "AND ($3::text IS NULL OR i.status = $3) "
                      "AND ($4::text IS NULL OR i.consensus @> ARRAY[$4::text]) "
                      "AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM labeling.labels l "
                      "     WHERE l.item_id = i.id AND l.annotator = $5)) "
                      "AND ($6::bigint IS NULL OR " +
                      time_column +
                      " >= to_timestamp($6::bigint / 1000000.0)) "
                      "AND ($7::bigint IS NULL OR " +
                      time_column + " < to_timestamp($7::bigint / 1000000.0)) ORDER BY " + key +
                      " LIMIT $8";
    auto r = tx.exec_params(sql, f.project_id, after_id, f.status.empty() ? null : f.status.c_str(),
                            f.class_name.empty() ? null : f.class_name.c_str(),
                            f.annotator.empty() ? null : f.annotator.c_str(),
                            f.from_us ? from.c_str() : null, f.to_us ? to.c_str() : null, limit);
    std::vector<ItemRecord> out;
    for (const auto& row : r) out.push_back(ItemFromRow(row));
    return Outcome<std::vector<ItemRecord>>(std::move(out));
  });
}

Outcome<std::vector<ItemRecord>> QueryStore::GetItems(const std::vector<int64_t>& ids,
                                                      bool with_labels) {
  return Guarded<std::vector<ItemRecord>>(pool_, "GetItem", [&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    const std::string id_array = IntArray(ids);
    auto r = tx.exec_params(std::string("SELECT ") + kItemColumns +
                                ", i.text_payload, i.row_payload::text, i.image, "
                                "i.image_format FROM unnest($1::bigint[]) WITH ORDINALITY "
                                "AS x(id, ord) JOIN labeling.items i ON i.id = x.id "
                                "ORDER BY x.ord",
                            id_array);
    std::vector<ItemRecord> out;
    std::map<int64_t, size_t> index;
    for (const auto& row : r) {
      ItemRecord it = ItemFromRow(row);
      if (!row[9].is_null()) it.text = row[9].as<std::string>();
      if (!row[10].is_null()) it.row_json = row[10].as<std::string>();
      if (!row[11].is_null()) {
        pqxx::binarystring image(row[11]);
        it.image = image.str();
      }
      if (!row[12].is_null()) it.image_format = row[12].as<std::string>();
      index[it.id] = out.size();
      out.push_back(std::move(it));
    }
    if (with_labels && !out.empty()) {
      for (const auto& row :
           tx.exec_params("SELECT item_id, annotator, array_to_json(classes)::text, seconds_spent, "
                          "(extract(epoch FROM created_at) * 1000000)::bigint, "
                          "(extract(epoch FROM updated_at) * 1000000)::bigint "
                          "FROM labeling.labels WHERE item_id = ANY ($1::bigint[]) "
                          "ORDER BY item_id, created_at, annotator",
                          id_array)) {
        out[index[row[0].as<int64_t>()]].labels.push_back(
            {row[1].as<std::string>(), JsonStrings(row[2]), row[3].as<double>(),
             row[4].as<int64_t>(), row[5].as<int64_t>()});
      }
    }
    return Outcome<std::vector<ItemRecord>>(std::move(out));
  });
}

}  // namespace labelloop::labeling::storage
