#include "services/dl_manager/storage/download_store.hpp"

#include <fstream>
#include <vector>

#include "services/dl_manager/archive/sha256.hpp"

namespace labelloop::dl_manager {
namespace {

constexpr const char* kColumns =
    "id, project_id, model_id, status, phase, rows_written, attempts, message, "
    "coalesce(size_bytes, 0), coalesce(sha256, ''), entry_counts::text, fingerprint, "
    "requested_by, coalesce(build_id, 0), coalesce(chunk_size, 0), "
    "coalesce(extract(epoch FROM created_at), 0)::float8, "
    "coalesce(extract(epoch FROM started_at), 0)::float8, "
    "coalesce(extract(epoch FROM finished_at), 0)::float8";

DownloadRow ToRow(const pqxx::row& r) {
  DownloadRow d;
  d.id = r[0].as<int64_t>();
  d.project_id = r[1].as<int64_t>();
  d.model_id = r[2].as<int64_t>();
  d.status = r[3].as<std::string>();
  d.phase = r[4].as<std::string>();
  d.rows_written = r[5].as<int64_t>();
  d.attempts = r[6].as<int>();
  d.message = r[7].as<std::string>();
  d.size_bytes = r[8].as<int64_t>();
  d.sha256 = r[9].as<std::string>();
  d.entry_counts = r[10].as<std::string>();
  d.fingerprint = r[11].as<std::string>();
  d.requested_by = r[12].as<std::string>();
  d.build_id = r[13].as<int64_t>();
  d.chunk_size = r[14].as<int>();
  d.created_at = r[15].as<double>();
  d.started_at = r[16].as<double>();
  d.finished_at = r[17].as<double>();
  return d;
}

// The WHERE clause that proves the caller still holds the claim ($1 id, $2 worker, $3 attempt).
constexpr const char* kOwned =
    "id = $1 AND status = 'BUILDING' AND claimed_by = $2 AND attempts = $3";

}  // namespace

DownloadStore::DownloadStore(pg::Pool& pool, std::string worker_id)
    : pool_(pool), worker_id_(std::move(worker_id)) {}

int64_t DownloadStore::ResolveModel(int64_t project_id, int64_t model_id) {
  return pool_.Run([&](pqxx::connection& c) -> int64_t {
    pqxx::read_transaction tx(c);
    if (tx.exec_params("SELECT 1 FROM labeling.v_projects WHERE project_id = $1", project_id)
            .empty()) {
      throw TargetNotFound("project " + std::to_string(project_id) + " does not exist");
    }
    if (model_id == 0) {
      auto r = tx.exec_params(
          "SELECT model_id FROM training.v_models WHERE project_id = $1 "
          "ORDER BY version DESC, model_id DESC LIMIT 1",
          project_id);
      if (r.empty()) {
        throw TargetNotFound("project " + std::to_string(project_id) +
                             " has no trained model yet: train one, then request the download");
      }
      return r[0][0].as<int64_t>();
    }
    auto r =
        tx.exec_params("SELECT project_id FROM training.v_models WHERE model_id = $1", model_id);
    if (r.empty()) {
      throw TargetNotFound("model " + std::to_string(model_id) + " does not exist");
    }
    if (r[0][0].as<int64_t>() != project_id) {
      throw TargetNotFound("model " + std::to_string(model_id) + " belongs to project " +
                           r[0][0].c_str() + ", not to project " + std::to_string(project_id));
    }
    return model_id;
  });
}

std::string DownloadStore::Fingerprint(int64_t project_id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto l = tx.exec_params(
        "SELECT count(*), coalesce(to_char(max(updated_at) AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '-') FROM labeling.v_labels WHERE project_id = $1",
        project_id);
    auto i = tx.exec_params(
        "SELECT count(*), coalesce(max(item_id), 0), count(*) FILTER (WHERE labeled) "
        "FROM labeling.v_items WHERE project_id = $1",
        project_id);
    return "labels=" + l[0][0].as<std::string>() + "@" + l[0][1].as<std::string>() +
           ";items=" + i[0][0].as<std::string>() + "/" + i[0][1].as<std::string>() +
           ";labeled=" + i[0][2].as<std::string>();
  });
}

DownloadStore::RequestOutcome DownloadStore::Request(int64_t project_id, int64_t model_id,
                                                     const std::string& requested_by,
                                                     int max_attempts) {
  const std::string fingerprint = Fingerprint(project_id);
  for (int attempt = 0;; ++attempt) {
    auto outcome = pool_.Run([&](pqxx::connection& c) -> std::optional<RequestOutcome> {
      pqxx::work tx(c);
      auto inserted = tx.exec_params(
          std::string("INSERT INTO dl_manager.downloads "
                      "(project_id, model_id, fingerprint, requested_by, max_attempts) "
                      "VALUES ($1, $2, $3, $4, $5) "
                      "ON CONFLICT (project_id, model_id, fingerprint) "
                      "WHERE status IN ('REQUESTED', 'BUILDING', 'AVAILABLE') DO NOTHING "
                      "RETURNING ") +
              kColumns,
          project_id, model_id, fingerprint, requested_by, max_attempts);
      if (!inserted.empty()) {
        tx.commit();
        return RequestOutcome{ToRow(inserted[0]), true};
      }
      auto existing = tx.exec_params(
          std::string("SELECT ") + kColumns +
              " FROM dl_manager.downloads WHERE project_id = $1 AND model_id = $2 AND "
              "fingerprint = $3 AND status IN ('REQUESTED', 'BUILDING', 'AVAILABLE')",
          project_id, model_id, fingerprint);
      tx.commit();
      if (existing.empty()) return std::nullopt;  // it failed or was deleted just now
      return RequestOutcome{ToRow(existing[0]), false};
    });
    if (outcome) return *outcome;
    if (attempt >= 5) throw std::runtime_error("the download request kept conflicting; retry");
  }
}

std::optional<DownloadRow> DownloadStore::Get(int64_t id) {
  return pool_.Run([&](pqxx::connection& c) -> std::optional<DownloadRow> {
    pqxx::read_transaction tx(c);
    auto r = tx.exec_params(
        std::string("SELECT ") + kColumns + " FROM dl_manager.downloads WHERE id = $1", id);
    if (r.empty()) return std::nullopt;
    return ToRow(r[0]);
  });
}

std::vector<DownloadRow> DownloadStore::List(int64_t project_id, int64_t before_id, int limit) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    auto r =
        tx.exec_params(std::string("SELECT ") + kColumns +
                           " FROM dl_manager.downloads WHERE ($1::bigint = 0 OR project_id = $1) "
                           "AND ($2::bigint = 0 OR id < $2) ORDER BY id DESC LIMIT $3",
                       project_id, before_id, limit);
    std::vector<DownloadRow> rows;
    for (const auto& row : r) rows.push_back(ToRow(row));
    return rows;
  });
}

bool DownloadStore::Delete(int64_t id) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params("DELETE FROM dl_manager.downloads WHERE id = $1 RETURNING id", id);
    tx.commit();
    return !r.empty();
  });
}

int DownloadStore::DeleteOlderThan(int64_t seconds) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "DELETE FROM dl_manager.downloads WHERE status IN ('AVAILABLE', 'FAILED') "
        "AND finished_at < now() - $1::float8 * interval '1 second' RETURNING id",
        seconds);
    tx.commit();
    return static_cast<int>(r.size());
  });
}

std::optional<Claim> DownloadStore::ClaimNext(int64_t lease_ms, std::vector<DownloadRow>* failed) {
  for (;;) {
    auto step = pool_.Run([&](pqxx::connection& c) -> std::pair<bool, std::optional<Claim>> {
      pqxx::work tx(c);
      auto r = tx.exec(
          "SELECT id, project_id, model_id, status, attempts, max_attempts, message "
          "FROM dl_manager.downloads "
          "WHERE status = 'REQUESTED' OR (status = 'BUILDING' AND lease_until < now()) "
          "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED");
      if (r.empty()) return {false, std::nullopt};
      const int64_t id = r[0][0].as<int64_t>();
      const int attempts = r[0][4].as<int>();
      const int max_attempts = r[0][5].as<int>();
      if (r[0][3].as<std::string>() == "BUILDING") {
        // Its builder died or stalled past the lease: that build is over.
        tx.exec_params(
            "UPDATE dl_manager.builds SET outcome = 'LOST', finished_at = now(), "
            "message = 'lease expired' WHERE download_id = $1 AND outcome IS NULL",
            id);
      }
      if (attempts >= max_attempts) {
        std::string last = r[0][6].as<std::string>();
        std::string message = "gave up after " + std::to_string(attempts) + " attempts" +
                              (last.empty() ? " (builders stopped before finishing)" : ": " + last);
        auto f = tx.exec_params(std::string("UPDATE dl_manager.downloads SET status = 'FAILED', "
                                            "message = $2, claimed_by = NULL, lease_until = "
                                            "NULL, finished_at = now() WHERE id = $1 RETURNING ") +
                                    kColumns,
                                id, message);
        tx.commit();
        if (failed != nullptr) failed->push_back(ToRow(f[0]));
        return {true, std::nullopt};
      }
      tx.exec_params(
          "UPDATE dl_manager.downloads SET status = 'BUILDING', attempts = attempts + 1, "
          "claimed_by = $2, lease_until = now() + $3::float8 * interval '1 millisecond', "
          "phase = 'claimed', rows_written = 0, started_at = now() WHERE id = $1",
          id, worker_id_, lease_ms);
      auto b = tx.exec_params(
          "INSERT INTO dl_manager.builds (download_id, attempt, worker) VALUES ($1, $2, $3) "
          "RETURNING id",
          id, attempts + 1, worker_id_);
      tx.commit();
      return {true, Claim{id, r[0][1].as<int64_t>(), r[0][2].as<int64_t>(), b[0][0].as<int64_t>(),
                          attempts + 1}};
    });
    if (step.second) return step.second;
    if (!step.first) return std::nullopt;
  }
}

bool DownloadStore::Renew(const Claim& claim, int64_t lease_ms, const std::string& phase,
                          int64_t rows) {
  return pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        std::string("UPDATE dl_manager.downloads SET lease_until = now() + $4::float8 * interval "
                    "'1 millisecond', phase = $5, rows_written = $6 WHERE ") +
            kOwned + " RETURNING id",
        claim.download_id, worker_id_, claim.attempt, lease_ms, phase, rows);
    tx.commit();
    return !r.empty();
  });
}

std::optional<DownloadStore::Stored> DownloadStore::StoreArchive(
    const Claim& claim, const Archive& archive, const std::function<bool()>& keep_going) {
  // Not through Pool::Run: a retry would need the file read again; a broken
  // connection simply fails this attempt.
  auto lease = pool_.Acquire();
  try {
    pqxx::work tx(*lease);
    std::ifstream in(archive.path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read the built archive " + archive.path);
    std::vector<char> buffer(static_cast<size_t>(archive.chunk_bytes));
    Sha256 hash;
    int64_t size = 0;
    int seq = 0;
    for (;;) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      const auto n = static_cast<size_t>(in.gcount());
      if (n == 0) break;
      if (!keep_going()) return std::nullopt;
      hash.Update(buffer.data(), n);
      tx.exec_params(
          "INSERT INTO dl_manager.archive_chunks (build_id, seq, data) "
          "VALUES ($1, $2, $3)",
          claim.build_id, seq++, pqxx::binarystring(buffer.data(), n));
      size += static_cast<int64_t>(n);
    }
    if (in.bad()) throw std::runtime_error("reading the built archive failed");
    Stored stored{size, hash.HexDigest()};
    auto r = tx.exec_params(
        std::string("UPDATE dl_manager.downloads SET status = 'AVAILABLE', build_id = $4, "
                    "size_bytes = $5, sha256 = $6, chunk_size = $7, entry_counts = $8::jsonb, "
                    "manifest = $9::jsonb, rows_written = $10, phase = 'done', message = '', "
                    "claimed_by = NULL, "
                    "lease_until = NULL, finished_at = now() WHERE ") +
            kOwned + " RETURNING id",
        claim.download_id, worker_id_, claim.attempt, claim.build_id, stored.size, stored.sha256,
        archive.chunk_bytes, archive.entry_counts, archive.manifest, archive.rows);
    if (r.empty()) return std::nullopt;  // the lease was lost: roll everything back
    tx.exec_params(
        "UPDATE dl_manager.builds SET outcome = 'AVAILABLE', finished_at = now() WHERE id = $1",
        claim.build_id);
    tx.commit();
    return stored;
  } catch (const pqxx::broken_connection&) {
    lease.Discard();
    throw;
  }
}

std::string DownloadStore::Fail(const Claim& claim, const std::string& message, bool retry) {
  return pool_.Run([&](pqxx::connection& c) -> std::string {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        std::string(
            "UPDATE dl_manager.downloads SET status = CASE WHEN $4::boolean AND attempts < "
            "max_attempts THEN 'REQUESTED' ELSE 'FAILED' END, message = $5, "
            "claimed_by = NULL, lease_until = NULL, finished_at = CASE WHEN $4::boolean AND "
            "attempts < max_attempts THEN NULL ELSE now() END WHERE ") +
            kOwned + " RETURNING status",
        claim.download_id, worker_id_, claim.attempt, retry, message);
    if (r.empty()) return "";
    const std::string status = r[0][0].as<std::string>();
    tx.exec_params(
        "UPDATE dl_manager.builds SET outcome = $2, finished_at = now(), message = $3 "
        "WHERE id = $1",
        claim.build_id, status == "FAILED" ? "FAILED" : "RETRY", message);
    tx.commit();
    return status;
  });
}

void DownloadStore::Release(const Claim& claim) {
  pool_.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        std::string("UPDATE dl_manager.downloads SET status = 'REQUESTED', attempts = "
                    "attempts - 1, claimed_by = NULL, lease_until = NULL, phase = 'released' "
                    "WHERE ") +
            kOwned + " RETURNING id",
        claim.download_id, worker_id_, claim.attempt);
    if (!r.empty()) {
      tx.exec_params(
          "UPDATE dl_manager.builds SET outcome = 'RELEASED', finished_at = now(), "
          "message = 'the replica was stopping' WHERE id = $1",
          claim.build_id);
    }
    tx.commit();
  });
}

bool DownloadStore::ReadArchive(const DownloadRow& row, int64_t offset,
                                const std::function<bool(int64_t, std::string_view)>& sink) {
  if (row.chunk_size <= 0) return false;
  int64_t seq = offset / row.chunk_size;
  size_t skip = static_cast<size_t>(offset % row.chunk_size);
  int64_t position = offset;
  while (position < row.size_bytes) {
    auto data = pool_.Run([&](pqxx::connection& c) -> std::optional<pqxx::binarystring> {
      pqxx::read_transaction tx(c);
      auto r = tx.exec_params(
          "SELECT data FROM dl_manager.archive_chunks WHERE build_id = $1 AND seq = $2",
          row.build_id, seq);
      if (r.empty()) return std::nullopt;
      return pqxx::binarystring(r[0][0]);
    });
    if (!data || data->size() <= skip) return false;
    std::string_view piece(data->get() == nullptr ? "" : reinterpret_cast<const char*>(data->get()),
                           data->size());
    piece.remove_prefix(skip);
    if (!sink(position, piece)) return true;
    position += static_cast<int64_t>(piece.size());
    skip = 0;
    ++seq;
  }
  return true;
}

}  // namespace labelloop::dl_manager
