#include "services/training/storage/store.hpp"

#include <stdexcept>

#include "common/prediction_chunks/pg_write.hpp"
#include "services/training/storage/pg_read.hpp"

namespace labelloop::training::storage {
namespace {

std::string JobCols(const std::string& p) {
  return p + "id, " + p + "project_id, " + p + "state, " + p + "spec::text, " + p + "attempts, " +
         p + "max_attempts, coalesce(" + p + "claimed_by, ''), " + p + "epoch, " + p + "epochs, " +
         p + "cancel_requested, " + p + "message, coalesce(" + p + "model_id, 0), " + p +
         "trigger, extract(epoch from " + p + "created_at)::bigint, coalesce(extract(epoch from " +
         p + "started_at)::bigint, 0), coalesce(extract(epoch from " + p +
         "finished_at)::bigint, 0)";
}

JobRow ToJob(const pqxx::row& r) {
  JobRow j;
  j.id = r[0].as<int64_t>();
  j.project_id = r[1].as<int64_t>();
  j.state = r[2].as<std::string>();
  j.spec = nlohmann::json::parse(r[3].c_str());
  j.attempts = r[4].as<int>();
  j.max_attempts = r[5].as<int>();
  j.claimed_by = r[6].as<std::string>();
  j.epoch = r[7].as<int>();
  j.epochs = r[8].as<int>();
  j.cancel_requested = r[9].as<bool>();
  j.message = r[10].as<std::string>();
  j.model_id = r[11].as<int64_t>();
  j.trigger = r[12].as<std::string>();
  j.created_at = r[13].as<int64_t>();
  j.started_at = r[14].as<int64_t>();
  j.finished_at = r[15].as<int64_t>();
  return j;
}

std::vector<std::string> TextArray(const pqxx::field& f) {
  std::vector<std::string> out;
  auto parser = f.as_array();
  for (;;) {
    auto [kind, value] = parser.get_next();
    if (kind == pqxx::array_parser::done) break;
    if (kind == pqxx::array_parser::string_value) out.push_back(std::move(value));
  }
  return out;
}

const char* kModelCols =
    "id, project_id, version, coalesce(job_id, 0), model_type, multi_label, classes, "
    "metrics::text, coalesce(model_json->'spec', '{}')::text, labeled_items, "
    "predictions_ready, extract(epoch from created_at)::bigint";

ModelRow ToModel(const pqxx::row& r) {
  ModelRow m;
  m.id = r[0].as<int64_t>();
  m.project_id = r[1].as<int64_t>();
  m.version = r[2].as<int>();
  m.job_id = r[3].as<int64_t>();
  m.model_type = r[4].as<std::string>();
  m.multi_label = r[5].as<bool>();
  m.classes = TextArray(r[6]);
  m.metrics = nlohmann::json::parse(r[7].c_str());
  m.spec = nlohmann::json::parse(r[8].c_str());
  m.labeled_items = r[9].as<int64_t>();
  m.predictions_ready = r[10].as<bool>();
  m.created_at = r[11].as<int64_t>();
  return m;
}

}  // namespace

std::optional<int64_t> Store::CreateJob(int64_t project_id, const nlohmann::json& spec, int epochs,
                                        int max_attempts, const std::string& trigger,
                                        int64_t labeled_now, int64_t* live_job) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<int64_t> {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "INSERT INTO training.jobs (project_id, spec, epochs, max_attempts, trigger) "
        "VALUES ($1, $2::jsonb, $3, $4, $5) "
        "ON CONFLICT (project_id) WHERE state IN ('PENDING', 'RUNNING') DO NOTHING RETURNING id",
        project_id, spec.dump(), epochs, max_attempts, trigger);
    if (r.empty()) {
      auto live = tx.exec_params(
          "SELECT id FROM training.jobs WHERE project_id = $1 AND state IN ('PENDING', "
          "'RUNNING')",
          project_id);
      if (live_job) *live_job = live.empty() ? 0 : live[0][0].as<int64_t>();
      return std::nullopt;
    }
    tx.exec_params(
        "INSERT INTO training.project_training (project_id, labels_at_last_job) VALUES ($1, $2) "
        "ON CONFLICT (project_id) DO UPDATE SET labels_at_last_job = EXCLUDED.labels_at_last_job",
        project_id, labeled_now);
    tx.commit();
    return r[0][0].as<int64_t>();
  });
}

std::optional<JobRow> Store::GetJob(int64_t job_id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<JobRow> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params("SELECT " + JobCols("") + " FROM training.jobs WHERE id = $1", job_id);
    if (r.empty()) return std::nullopt;
    return ToJob(r[0]);
  });
}

std::vector<JobRow> Store::ListJobs(int64_t project_id, int limit) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params("SELECT " + JobCols("") +
                                " FROM training.jobs WHERE project_id = $1 ORDER BY id DESC "
                                "LIMIT $2",
                            project_id, limit);
    std::vector<JobRow> out;
    for (const auto& row : r) out.push_back(ToJob(row));
    return out;
  });
}

std::vector<EpochStats> Store::Epochs(int64_t job_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        "SELECT epoch, train_loss, train_accuracy, val_loss, val_accuracy FROM "
        "training.job_epochs WHERE job_id = $1 ORDER BY epoch",
        job_id);
    std::vector<EpochStats> out;
    for (const auto& row : r) {
      out.push_back({row[0].as<int>(), row[1].as<double>(), row[2].as<double>(),
                     row[3].as<double>(), row[4].as<double>()});
    }
    return out;
  });
}

std::optional<JobRow> Store::Cancel(int64_t job_id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<JobRow> {
    pqxx::work tx(c);
    // In SET, `state` is the old value: a pending job ends now, a running one is asked to stop.
    tx.exec_params(
        "UPDATE training.jobs SET "
        "cancel_requested = (state = 'RUNNING'), "
        "message = CASE WHEN state = 'PENDING' THEN 'cancelled before it started' ELSE message "
        "END, "
        "finished_at = CASE WHEN state = 'PENDING' THEN now() ELSE finished_at END, "
        "state = CASE WHEN state = 'PENDING' THEN 'CANCELLED' ELSE state END "
        "WHERE id = $1 AND state IN ('PENDING', 'RUNNING')",
        job_id);
    auto r = tx.exec_params("SELECT " + JobCols("") + " FROM training.jobs WHERE id = $1", job_id);
    tx.commit();
    if (r.empty()) return std::nullopt;
    return ToJob(r[0]);
  });
}

std::vector<JobRow> Store::ReapExpired() {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec(
        "UPDATE training.jobs SET "
        "state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE 'FAILED' END, "
        "message = CASE WHEN cancel_requested THEN 'cancelled' ELSE "
        "format('gave up after %s attempts: the worker running it (%s) stopped renewing its "
        "lease', attempts, claimed_by) END, "
        "claimed_by = NULL, lease_until = NULL, finished_at = now() "
        "WHERE state = 'RUNNING' AND lease_until < now() "
        "AND (attempts >= max_attempts OR cancel_requested) RETURNING " +
        JobCols(""));
    tx.commit();
    std::vector<JobRow> out;
    for (const auto& row : r) out.push_back(ToJob(row));
    return out;
  });
}

std::optional<JobRow> Store::Claim(const std::string& worker, int lease_seconds) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<JobRow> {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "WITH c AS (SELECT id FROM training.jobs "
        "  WHERE (state = 'PENDING' OR (state = 'RUNNING' AND lease_until < now())) "
        "    AND attempts < max_attempts AND NOT cancel_requested "
        "  ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
        "UPDATE training.jobs j SET state = 'RUNNING', attempts = j.attempts + 1, "
        "claimed_by = $1, lease_until = now() + make_interval(secs => $2), "
        "started_at = coalesce(j.started_at, now()), "
        "epoch = CASE WHEN j.model_id IS NULL THEN 0 ELSE j.epoch END, message = '' "
        "FROM c WHERE j.id = c.id RETURNING " +
            JobCols("j."),
        worker, lease_seconds);
    if (r.empty()) return std::nullopt;
    JobRow job = ToJob(r[0]);
    if (job.model_id == 0) {
      tx.exec_params("DELETE FROM training.job_epochs WHERE job_id = $1", job.id);
    }
    tx.commit();
    return job;
  });
}

Lease Store::Renew(int64_t job_id, const std::string& worker, int lease_seconds) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "UPDATE training.jobs SET lease_until = now() + make_interval(secs => $3) "
        "WHERE id = $1 AND claimed_by = $2 AND state = 'RUNNING' RETURNING cancel_requested",
        job_id, worker, lease_seconds);
    tx.commit();
    if (r.empty()) return Lease::kLost;
    return r[0][0].as<bool>() ? Lease::kCancelRequested : Lease::kHeld;
  });
}

bool Store::RecordEpoch(int64_t job_id, const std::string& worker, const EpochStats& s) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "UPDATE training.jobs SET epoch = $3 WHERE id = $1 AND claimed_by = $2 AND state = "
        "'RUNNING'",
        job_id, worker, s.epoch);
    if (r.affected_rows() == 0) return false;
    tx.exec_params(
        "INSERT INTO training.job_epochs (job_id, epoch, train_loss, train_accuracy, val_loss, "
        "val_accuracy) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id, epoch) DO UPDATE SET "
        "train_loss = EXCLUDED.train_loss, train_accuracy = EXCLUDED.train_accuracy, "
        "val_loss = EXCLUDED.val_loss, val_accuracy = EXCLUDED.val_accuracy, recorded_at = now()",
        job_id, s.epoch, s.train_loss, s.train_accuracy, s.val_loss, s.val_accuracy);
    tx.commit();
    return true;
  });
}

bool Store::Release(int64_t job_id, const std::string& worker) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "UPDATE training.jobs SET state = 'PENDING', claimed_by = NULL, lease_until = NULL, "
        "attempts = greatest(attempts - 1, 0), "
        "epoch = CASE WHEN model_id IS NULL THEN 0 ELSE epoch END "
        "WHERE id = $1 AND claimed_by = $2 AND state = 'RUNNING'",
        job_id, worker);
    tx.commit();
    return r.affected_rows() > 0;
  });
}

bool Store::Finish(int64_t job_id, const std::string& worker, const std::string& state,
                   const std::string& message) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "UPDATE training.jobs SET state = $3, message = $4, claimed_by = NULL, "
        "lease_until = NULL, finished_at = now() "
        "WHERE id = $1 AND claimed_by = $2 AND state = 'RUNNING'",
        job_id, worker, state, message);
    tx.commit();
    return r.affected_rows() > 0;
  });
}

std::string Store::RetryOrFail(int64_t job_id, const std::string& worker,
                               const std::string& message) {
  return pool_.Run([&](pqxx::connection& c) -> std::string {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "UPDATE training.jobs SET "
        "state = CASE WHEN attempts >= max_attempts THEN 'FAILED' ELSE 'PENDING' END, "
        "message = CASE WHEN attempts >= max_attempts THEN "
        "  format('gave up after %s attempts: %s', attempts, $3::text) ELSE $3 END, "
        "finished_at = CASE WHEN attempts >= max_attempts THEN now() ELSE NULL END, "
        "claimed_by = NULL, lease_until = NULL "
        "WHERE id = $1 AND claimed_by = $2 AND state = 'RUNNING' RETURNING state",
        job_id, worker, message);
    tx.commit();
    return r.empty() ? "" : r[0][0].as<std::string>();
  });
}

std::optional<std::pair<int64_t, int>> Store::InsertModel(int64_t job_id, const std::string& worker,
                                                          int64_t project_id,
                                                          const PortableModel& m,
                                                          const std::string& model_json,
                                                          const std::string& model_proto) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<std::pair<int64_t, int>> {
    pqxx::work tx(c);
    auto held = tx.exec_params(
        "SELECT 1 FROM training.jobs WHERE id = $1 AND claimed_by = $2 AND state = 'RUNNING' "
        "FOR UPDATE",
        job_id, worker);
    if (held.empty()) return std::nullopt;
    const nlohmann::json classes = m.classes;
    auto r = tx.exec_params1(
        "INSERT INTO training.models (project_id, version, job_id, model_type, multi_label, "
        "classes, model_json, model_proto, metrics, labeled_items) "
        "SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, "
        "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6::jsonb, $7, $8::jsonb, $9 "
        "FROM training.models WHERE project_id = $1 RETURNING id, version",
        project_id, job_id, std::string(ModelKindName(m.spec.model_type)), m.multi_label,
        classes.dump(), model_json, pqxx::binarystring(model_proto),
        MetricsToJson(m.metrics).dump(), m.metrics.labeled_items);
    const auto model_id = r[0].as<int64_t>();
    tx.exec_params("UPDATE training.jobs SET model_id = $2 WHERE id = $1", job_id, model_id);
    tx.commit();
    return std::make_pair(model_id, r[1].as<int>());
  });
}

std::vector<ModelRow> Store::ListModels(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(std::string("SELECT ") + kModelCols +
                                " FROM training.models WHERE project_id = $1 ORDER BY version "
                                "DESC",
                            project_id);
    std::vector<ModelRow> out;
    for (const auto& row : r) out.push_back(ToModel(row));
    return out;
  });
}

std::optional<ModelRow> Store::GetModel(int64_t model_id, bool with_body) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<ModelRow> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(std::string("SELECT ") + kModelCols +
                                ", CASE WHEN $2 THEN model_json::text ELSE '' END, "
                                "CASE WHEN $2 THEN model_proto END "
                                "FROM training.models WHERE id = $1",
                            model_id, with_body);
    if (r.empty()) return std::nullopt;
    ModelRow m = ToModel(r[0]);
    m.model_json = r[0][12].as<std::string>();
    if (!r[0][13].is_null()) m.model_proto = pqxx::binarystring(r[0][13]).str();
    return m;
  });
}

std::optional<int64_t> Store::LatestModel(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<int64_t> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        "SELECT id FROM training.models WHERE project_id = $1 ORDER BY version DESC LIMIT 1",
        project_id);
    if (r.empty()) return std::nullopt;
    return r[0][0].as<int64_t>();
  });
}

Policy Store::GetPolicy(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        "SELECT coalesce(pt.retrain_every, CASE WHEN (p.settings->>'retrain_every') ~ "
        "'^[0-9]{1,9}$' THEN (p.settings->>'retrain_every')::int ELSE 0 END), "
        "coalesce(pt.labels_at_last_job, 0), coalesce(pt.spec, '{}')::text "
        "FROM labeling.v_projects p LEFT JOIN training.project_training pt "
        "ON pt.project_id = p.project_id WHERE p.project_id = $1",
        project_id);
    Policy p;
    p.project_id = project_id;
    if (!r.empty()) {
      p.retrain_every = r[0][0].as<int>();
      p.labels_at_last_job = r[0][1].as<int64_t>();
      p.spec = nlohmann::json::parse(r[0][2].c_str());
    }
    return p;
  });
}

Policy Store::SetPolicy(int64_t project_id, int retrain_every, const nlohmann::json& spec) {
  pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO training.project_training (project_id, retrain_every, spec) "
        "VALUES ($1, $2, $3::jsonb) ON CONFLICT (project_id) DO UPDATE SET "
        "retrain_every = EXCLUDED.retrain_every, spec = EXCLUDED.spec",
        project_id, retrain_every, spec.dump());
    tx.commit();
    return 0;
  });
  return GetPolicy(project_id);
}

std::vector<Store::Due> Store::DueProjects(std::optional<int64_t> only_project) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        "WITH pol AS ("
        "  SELECT p.project_id, "
        "    coalesce(pt.retrain_every, CASE WHEN (p.settings->>'retrain_every') ~ '^[0-9]{1,9}$' "
        "      THEN (p.settings->>'retrain_every')::int ELSE 0 END) AS every, "
        "    coalesce(pt.labels_at_last_job, 0) AS last, coalesce(pt.spec, '{}') AS spec "
        "  FROM labeling.v_projects p "
        "  LEFT JOIN training.project_training pt ON pt.project_id = p.project_id "
        "  WHERE ($1 < 0 OR p.project_id = $1) AND p.status = 'active') "
        "SELECT pol.project_id, cnt.n, pol.spec::text FROM pol "
        "CROSS JOIN LATERAL (SELECT count(*) AS n FROM labeling.v_items i "
        "  WHERE i.project_id = pol.project_id AND i.labeled) cnt "
        "WHERE pol.every > 0 AND cnt.n - pol.last >= pol.every "
        "AND NOT EXISTS (SELECT 1 FROM training.jobs j WHERE j.project_id = pol.project_id "
        "  AND j.state IN ('PENDING', 'RUNNING'))",
        only_project.value_or(-1));
    std::vector<Due> out;
    for (const auto& row : r) {
      out.push_back(
          {row[0].as<int64_t>(), row[1].as<int64_t>(), nlohmann::json::parse(row[2].c_str())});
    }
    return out;
  });
}

PredictionSink::PredictionSink(pg::Pool& pool, int64_t model_id, int classes)
    : lease_(pool.Acquire()), model_id_(model_id), classes_(classes), packer_(classes) {
  tx_ = std::make_unique<pqxx::work>(*lease_);
  tx_->exec_params("DELETE FROM training.prediction_chunks WHERE model_id = $1", model_id_);
}

PredictionSink::~PredictionSink() = default;

void PredictionSink::Add(int64_t item_id, const float* probabilities, size_t n) {
  if (n != static_cast<size_t>(classes_)) {
    throw std::invalid_argument("item " + std::to_string(item_id) + ": " + std::to_string(n) +
                                " probabilities for a model of " + std::to_string(classes_) +
                                " classes");
  }
  packer_.Add(item_id, probabilities);
  ++rows_;
  if (packer_.full()) WriteChunk();
}

void PredictionSink::WriteChunk() {
  prediction_chunks::InsertChunk(*tx_, model_id_, chunk_, packer_);
  ++chunk_;
  packer_.Clear();
}

bool PredictionSink::Complete(int64_t job_id, const std::string& worker) {
  if (!packer_.empty()) WriteChunk();
  auto r = tx_->exec_params(
      "UPDATE training.jobs SET state = 'SUCCEEDED', claimed_by = NULL, lease_until = NULL, "
      "finished_at = now(), message = '' "
      "WHERE id = $1 AND claimed_by = $2 AND state = 'RUNNING'",
      job_id, worker);
  if (r.affected_rows() == 0) {
    tx_->abort();
    return false;
  }
  tx_->exec_params("UPDATE training.models SET predictions_ready = true WHERE id = $1", model_id_);
  tx_->commit();
  return true;
}

}  // namespace labelloop::training::storage
