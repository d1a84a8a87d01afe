#include "services/labeling/storage/project_store.hpp"

#include "services/labeling/storage/pg_util.hpp"

namespace labelloop::labeling::storage {

namespace {

constexpr const char* kColumns =
    "id, name, instructions, data_kind, label_kind, array_to_json(classes)::text, "
    "judgements_per_item, validators::text, settings::text, status, created_by, "
    "(extract(epoch FROM created_at) * 1000000)::bigint, "
    "(extract(epoch FROM updated_at) * 1000000)::bigint, coalesce(feature_dim, 0)";

ProjectRecord FromRow(const pqxx::row& r) {
  ProjectRecord p;
  p.id = r[0].as<int64_t>();
  p.name = r[1].as<std::string>();
  p.instructions = r[2].as<std::string>();
  p.data_kind = r[3].as<std::string>();
  p.schema.kind = ParseLabelKind(r[4].as<std::string>()).value_or(LabelKind::kSingle);
  p.schema.classes = JsonStrings(r[5]);
  p.judgements_per_item = r[6].as<int>();
  p.validators_json = r[7].as<std::string>();
  p.settings_json = r[8].as<std::string>();
  p.status = r[9].as<std::string>();
  p.created_by = r[10].as<std::string>();
  p.created_at_us = r[11].as<int64_t>();
  p.updated_at_us = r[12].as<int64_t>();
  p.feature_dim = r[13].as<int>();
  return p;
}

Error ProjectNotFound(int64_t id) {
  return NotFound("project_id: no project " + std::to_string(id));
}

}  // namespace

Outcome<ProjectRecord> ProjectStore::Create(const NewProject& np) {
  return Guarded<ProjectRecord>(pool_, "CreateProject", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params1(
        std::string(
            "INSERT INTO labeling.projects (name, instructions, data_kind, label_kind, classes, "
            "judgements_per_item, validators, settings, created_by) "
            "VALUES ($1, $2, $3, $4, $5::text[], $6, $7::jsonb, $8::jsonb, $9) "
            "RETURNING ") +
            kColumns,
        np.name, np.instructions, np.data_kind, LabelKindName(np.schema.kind),
        TextArray(np.schema.classes), np.judgements_per_item, np.validators_json, np.settings_json,
        np.created_by);
    tx.commit();
    return Outcome<ProjectRecord>(FromRow(r));
  });
}

Outcome<ProjectRecord> ProjectStore::Get(int64_t id) {
  return Guarded<ProjectRecord>(pool_, "GetProject", [&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        std::string("SELECT ") + kColumns + " FROM labeling.projects WHERE id = $1", id);
    if (r.empty()) return Outcome<ProjectRecord>(ProjectNotFound(id));
    return Outcome<ProjectRecord>(FromRow(r[0]));
  });
}

Outcome<std::vector<ProjectRecord>> ProjectStore::List(int64_t after_id, int limit,
                                                       bool include_archived) {
  return Guarded<std::vector<ProjectRecord>>(pool_, "ListProjects", [&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r =
        tx.exec_params(std::string("SELECT ") + kColumns +
                           " FROM labeling.projects WHERE id > $1 AND ($2 OR status <> 'archived') "
                           "ORDER BY id LIMIT $3",
                       after_id, include_archived, limit);
    std::vector<ProjectRecord> out;
    for (const auto& row : r) out.push_back(FromRow(row));
    return Outcome<std::vector<ProjectRecord>>(std::move(out));
  });
}

Outcome<ProjectRecord> ProjectStore::Update(int64_t id, const ProjectChange& ch) {
  return Guarded<ProjectRecord>(pool_, "UpdateProject", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto cur = tx.exec_params(
        std::string("SELECT ") + kColumns + " FROM labeling.projects WHERE id = $1 FOR UPDATE", id);
    if (cur.empty()) return Outcome<ProjectRecord>(ProjectNotFound(id));
    const ProjectRecord before = FromRow(cur[0]);
    const bool schema_change = ch.schema.has_value();
    const bool k_change =
        ch.judgements_per_item && *ch.judgements_per_item != before.judgements_per_item;
    const bool kind_change = schema_change && ch.schema->kind != before.schema.kind;
    if (k_change || kind_change) {
      auto labels =
          tx.exec_params1("SELECT count(*) FROM labeling.labels WHERE project_id = $1", id)[0]
              .as<int64_t>();
      if (labels > 0) {
        const std::string what = k_change ? "judgements_per_item" : "schema.kind";
        return Outcome<ProjectRecord>(
            FailedPrecondition(what + ": cannot change once the project has labels (it has " +
                               std::to_string(labels) + ")"));
      }
    }
    if (schema_change) {
      auto removed = RemovedClasses(before.schema.classes, ch.schema->classes);
      if (!removed.empty()) {
        // Wait for submits in flight, then count what uses the dropped classes.
        tx.exec_params("SELECT pg_advisory_xact_lock($1::bigint)", kClassLockBase + id);
        auto usage_rows = tx.exec_params(
            "SELECT c, count(*) FROM labeling.labels, unnest(classes) AS c "
            "WHERE project_id = $1 AND c = ANY ($2::text[]) GROUP BY c ORDER BY c",
            id, TextArray(removed));
        std::vector<std::pair<std::string, int64_t>> usage;
        for (const auto& row : usage_rows) {
          usage.emplace_back(row[0].as<std::string>(), row[1].as<int64_t>());
        }
        if (auto refusal = ClassRemovalRefusal(usage); !refusal.empty()) {
          return Outcome<ProjectRecord>(FailedPrecondition(refusal));
        }
      }
    }
    const char* null = nullptr;
    std::string classes = schema_change ? TextArray(ch.schema->classes) : "";
    auto r = tx.exec_params1(
        std::string("UPDATE labeling.projects SET name = coalesce($2, name), "
                    "instructions = coalesce($3, instructions), "
                    "label_kind = coalesce($4, label_kind), "
                    "classes = coalesce($5::text[], classes), "
                    "judgements_per_item = coalesce($6::integer, judgements_per_item), "
                    "validators = coalesce($7::jsonb, validators), "
                    "settings = coalesce($8::jsonb, settings), updated_at = now() "
                    "WHERE id = $1 RETURNING ") +
            kColumns,
        id, ch.name ? ch.name->c_str() : null, ch.instructions ? ch.instructions->c_str() : null,
        schema_change ? LabelKindName(ch.schema->kind) : null,
        schema_change ? classes.c_str() : null,
        ch.judgements_per_item ? std::to_string(*ch.judgements_per_item).c_str() : null,
        ch.validators_json ? ch.validators_json->c_str() : null,
        ch.settings_json ? ch.settings_json->c_str() : null);
    tx.commit();
    return Outcome<ProjectRecord>(FromRow(r));
  });
}

Outcome<ProjectRecord> ProjectStore::Archive(int64_t id) {
  return Guarded<ProjectRecord>(pool_, "ArchiveProject", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(std::string("UPDATE labeling.projects SET status = 'archived', "
                                        "updated_at = now() WHERE id = $1 RETURNING ") +
                                kColumns,
                            id);
    if (r.empty()) return Outcome<ProjectRecord>(ProjectNotFound(id));
    tx.commit();
    return Outcome<ProjectRecord>(FromRow(r[0]));
  });
}

Outcome<ProjectRecord> ProjectStore::Complete(int64_t id) {
  return Guarded<ProjectRecord>(pool_, "CompleteProject", [&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto cur = tx.exec_params("SELECT status FROM labeling.projects WHERE id = $1 FOR UPDATE", id);
    if (cur.empty()) return Outcome<ProjectRecord>(ProjectNotFound(id));
    if (cur[0][0].as<std::string>() == "archived") {
      return Outcome<ProjectRecord>(
          FailedPrecondition("project " + std::to_string(id) + " is archived"));
    }
    auto counts = tx.exec_params1(
        "SELECT count(*) FILTER (WHERE status = 'unlabeled'), count(*) FROM labeling.items "
        "WHERE project_id = $1",
        id);
    const auto missing = counts[0].as<int64_t>();
    if (missing > 0) {
      return Outcome<ProjectRecord>(FailedPrecondition(
          std::to_string(missing) + " of " + std::to_string(counts[1].as<int64_t>()) +
          " items are still unlabeled; a project can be completed only when every item has "
          "its label"));
    }
    auto r = tx.exec_params1(std::string("UPDATE labeling.projects SET status = 'complete', "
                                         "updated_at = now() WHERE id = $1 RETURNING ") +
                                 kColumns,
                             id);
    tx.commit();
    return Outcome<ProjectRecord>(FromRow(r));
  });
}

}  // namespace labelloop::labeling::storage
