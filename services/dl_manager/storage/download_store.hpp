// The SQL behind download requests: creating (with dedupe), claiming with a lease,
// renewing, storing the archive as chunk rows, failing, releasing, listing, deleting
// and retention. Every state change checks that the caller still holds the lease
// (claimed_by and attempt), so a replica whose lease expired cannot overwrite the
// work of the one that took over.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"

namespace labelloop::dl_manager {

struct DownloadRow {
  int64_t id = 0;
  int64_t project_id = 0;
  int64_t model_id = 0;
  std::string status;
  std::string phase;
  int64_t rows_written = 0;
  int attempts = 0;
  std::string message;
  int64_t size_bytes = 0;
  std::string sha256;
  std::string entry_counts;  // JSON object text
  std::string fingerprint;
  std::string requested_by;
  int64_t build_id = 0;
  int chunk_size = 0;
  double created_at = 0;  // seconds since the epoch; 0 = not set
  double started_at = 0;
  double finished_at = 0;
};

// A claimed build: valid while claimed_by = worker and attempts = attempt.
struct Claim {
  int64_t download_id = 0;
  int64_t project_id = 0;
  int64_t model_id = 0;
  int64_t build_id = 0;
  int attempt = 0;
};

// Thrown by Request/Resolve when the project or model does not exist.
class TargetNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class DownloadStore {
 public:
  DownloadStore(pg::Pool& pool, std::string worker_id);

  // Resolves model_id 0 to the project's latest model; throws TargetNotFound with a
  // message naming what is missing.
  int64_t ResolveModel(int64_t project_id, int64_t model_id);

  // The label state of a project: label count, latest label change, item count and
  // highest item id. Two requests with equal fingerprints would export the same data.
  std::string Fingerprint(int64_t project_id);

  struct RequestOutcome {
    DownloadRow row;
    bool created = false;
  };
  RequestOutcome Request(int64_t project_id, int64_t model_id, const std::string& requested_by,
                         int max_attempts);

  std::optional<DownloadRow> Get(int64_t id);
  std::vector<DownloadRow> List(int64_t project_id, int64_t before_id, int limit);
  bool Delete(int64_t id);
  // Deletes AVAILABLE/FAILED downloads finished more than `seconds` ago; returns how many.
  int DeleteOlderThan(int64_t seconds);

  // Claims the oldest REQUESTED download, or a BUILDING one whose lease expired.
  // Downloads out of attempts are set FAILED on the way (their ids go to *failed).
  std::optional<Claim> ClaimNext(int64_t lease_ms, std::vector<DownloadRow>* failed);
  // Extends the lease and records progress; false when the lease is no longer ours.
  bool Renew(const Claim& claim, int64_t lease_ms, const std::string& phase, int64_t rows);

  struct Archive {
    std::string path;
    int chunk_bytes = 1 << 20;
    std::string entry_counts;  // JSON
    std::string manifest;      // JSON
    int64_t rows = 0;          // JSON records written
  };
  // Streams the archive file into chunk rows and marks the download AVAILABLE, in one
  // transaction. `keep_going` is asked between chunks (false aborts). Returns the
  // archive's size and sha256, or nullopt when the lease was lost (nothing stored).
  struct Stored {
    int64_t size = 0;
    std::string sha256;
  };
  std::optional<Stored> StoreArchive(const Claim& claim, const Archive& archive,
                                     const std::function<bool()>& keep_going);

  // Records a failed attempt: back to REQUESTED when `retry` and attempts remain, else
  // FAILED. Returns the new status ("" when the lease was no longer ours).
  std::string Fail(const Claim& claim, const std::string& message, bool retry);
  // Gives a claim back untouched (drain): REQUESTED, the attempt not counted.
  void Release(const Claim& claim);

  // Calls sink(offset, bytes) for the archive from `offset` on, one chunk at a time
  // (each read in its own short transaction). Returns false when a chunk is missing
  // (the download was deleted meanwhile).
  bool ReadArchive(const DownloadRow& row, int64_t offset,
                   const std::function<bool(int64_t, std::string_view)>& sink);

  const std::string& worker_id() const { return worker_id_; }

 private:
  pg::Pool& pool_;
  std::string worker_id_;
};

}  // namespace labelloop::dl_manager
