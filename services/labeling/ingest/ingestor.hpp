// Ingestion of items into a labeling project, without gRPC: a streamed upload (CSV,
// JSON Lines, zip of images) parsed chunk by chunk, validated, feature-extracted and
// bulk-loaded with binary COPY, in one transaction; and the single-item push.
//
// Where the rows go: an upload without a label column into a project that has no items,
// or whose first COPY buffer of rows (1 MiB) holds no external id the project already
// has, is COPYed straight into labeling.items (in a savepoint; the data sent is spooled
// to a temporary file). Everything else, and a direct COPY that meets an external id
// already stored (a duplicate in the file, a concurrent upload), goes into a temporary
// staging table and then into labeling.items with INSERT ... ON CONFLICT DO NOTHING
// (idempotent by external id, the first row of a duplicated id wins).
//
//   Ingestor ingestor(pool, options);
//   std::unique_ptr<UploadSession> s;
//   Status st = ingestor.BeginUpload(spec, &s);
//   for (chunk : chunks) if (!(st = s->Feed(chunk)).ok()) break;
//   UploadResult result;
//   if (st.ok()) st = s->Finish(&result);   // commits, or not (see UploadMode)
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/labeling/ingest/options.hpp"

namespace labelloop::labeling::ingest {

enum class Code {
  kOk,
  kInvalidArgument,
  kNotFound,
  kFailedPrecondition,
  kResourceExhausted,
  kUnavailable,
  kInternal
};

struct Status {
  Code code = Code::kOk;
  std::string message;
  bool ok() const { return code == Code::kOk; }
  static Status Ok() { return {}; }
  static Status Error(Code c, std::string m) { return {c, std::move(m)}; }
};

enum class Format { kCsv, kJsonl, kZipImages };
enum class Mode { kAllOrNothing, kCommitGoodRows };

struct ColumnMapping {
  std::string external_id;
  std::string sample_ts;
  std::string text;
  std::vector<std::string> features;
  std::string label;
  std::string label_separator = "|";
};

struct UploadSpec {
  int64_t project_id = 0;
  Format format = Format::kCsv;
  ColumnMapping mapping;
  Mode mode = Mode::kAllOrNothing;
  std::string file_name;
};

struct Rejected {
  int64_t line = 0;   // CSV/JSONL: 1-based line where the row starts
  std::string entry;  // zip: entry name
  std::string reason;
};

struct UploadResult {
  int64_t rows_read = 0;
  int64_t rows_accepted = 0;
  int64_t items_inserted = 0;
  int64_t duplicates = 0;
  int64_t labels_imported = 0;
  int64_t rows_rejected = 0;
  std::vector<Rejected> rejected;  // first options.max_rejects_listed
  int feature_dim = 0;
  int64_t bytes_received = 0;
};

// One upload in progress. Holds a pooled connection and an open transaction; destroying
// it without Finish rolls everything back.
class UploadSession {
 public:
  virtual ~UploadSession() = default;
  // Parses one chunk of the file. A non-OK status is fatal: the upload is abandoned.
  virtual Status Feed(std::string_view chunk) = 0;
  // Ends the file, then commits (or not) as the mode says. In all-or-nothing mode any
  // rejected row gives INVALID_ARGUMENT listing the rejects, and nothing is stored.
  virtual Status Finish(UploadResult* result) = 0;
};

struct PushItem {
  int64_t project_id = 0;
  std::string external_id;
  std::optional<int64_t> sample_ts_micros;  // since the Unix epoch
  enum class Kind { kNone, kImage, kText, kFeatures } kind = Kind::kNone;
  std::string image;  // encoded PNG/JPEG bytes
  std::string text;
  std::vector<float> features;
  std::vector<std::string> labels;
  std::string label_fields_json;  // "" or a JSON object
  std::string row_json;           // "" or a JSON object
};

struct PushResult {
  int64_t item_id = 0;
  bool created = false;
  int feature_dim = 0;
  bool labeled = false;
};

class Ingestor {
 public:
  Ingestor(pg::Pool& pool, IngestOptions options);

  Status BeginUpload(const UploadSpec& spec, std::unique_ptr<UploadSession>* session);
  Status Push(const PushItem& item, PushResult* result);

  const IngestOptions& options() const { return options_; }

 private:
  pg::Pool& pool_;
  IngestOptions options_;
  std::atomic<int> active_uploads_{0};
};

}  // namespace labelloop::labeling::ingest
