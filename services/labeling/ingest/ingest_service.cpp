#include "services/labeling/ingest/ingest_service.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/grpc_server/request_context.hpp"
#include "services/labeling/ingest/base64.hpp"
#include "services/labeling/ingest/ingestor.hpp"

namespace labelloop::labeling::ingest {
namespace {

grpc::Status ToGrpc(const Status& s) {
  switch (s.code) {
    case Code::kOk:
      return grpc::Status::OK;
    case Code::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, s.message};
    case Code::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, s.message};
    case Code::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, s.message};
    case Code::kResourceExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, s.message};
    case Code::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, s.message};
    case Code::kInternal:
      return {grpc::StatusCode::INTERNAL, s.message};
  }
  return {grpc::StatusCode::INTERNAL, s.message};
}

Status SpecFromHeader(const v1::UploadHeader& h, UploadSpec* spec) {
  spec->project_id = h.project_id();
  switch (h.format()) {
    case v1::UPLOAD_FORMAT_CSV:
      spec->format = Format::kCsv;
      break;
    case v1::UPLOAD_FORMAT_JSONL:
      spec->format = Format::kJsonl;
      break;
    case v1::UPLOAD_FORMAT_ZIP_IMAGES:
      spec->format = Format::kZipImages;
      break;
    default:
      return Status::Error(Code::kInvalidArgument,
                           "header.format: choose UPLOAD_FORMAT_CSV, UPLOAD_FORMAT_JSONL or "
                           "UPLOAD_FORMAT_ZIP_IMAGES");
  }
  spec->mode =
      h.mode() == v1::UPLOAD_MODE_COMMIT_GOOD_ROWS ? Mode::kCommitGoodRows : Mode::kAllOrNothing;
  const auto& m = h.mapping();
  spec->mapping.external_id = m.external_id_column();
  spec->mapping.sample_ts = m.sample_ts_column();
  spec->mapping.text = m.text_column();
  spec->mapping.features.assign(m.feature_columns().begin(), m.feature_columns().end());
  spec->mapping.label = m.label_column();
  if (!m.label_separator().empty()) spec->mapping.label_separator = m.label_separator();
  spec->file_name = h.file_name();
  return Status::Ok();
}

void FillResponse(const UploadResult& r, v1::UploadResponse* out) {
  out->set_rows_read(r.rows_read);
  out->set_rows_accepted(r.rows_accepted);
  out->set_items_inserted(r.items_inserted);
  out->set_duplicates(r.duplicates);
  out->set_labels_imported(r.labels_imported);
  out->set_rows_rejected(r.rows_rejected);
  out->set_feature_dim(r.feature_dim);
  out->set_bytes_received(r.bytes_received);
  for (const auto& rej : r.rejected) {
    auto* x = out->add_rejected();
    x->set_line(rej.line);
    x->set_entry(rej.entry);
    x->set_reason(rej.reason);
  }
}

}  // namespace

void DeclareIngestSettings(config::Settings& s) {
  const IngestOptions d;
  s.AddInt("ingest-max-upload-bytes", d.max_upload_bytes, "largest upload (bytes streamed)", 1,
           INT64_MAX);
  s.AddInt("ingest-max-row-bytes", d.max_row_bytes, "largest CSV record or JSON line", 1024,
           INT64_MAX);
  s.AddInt("ingest-zip-max-uncompressed-bytes", d.zip_max_uncompressed_bytes,
           "largest total uncompressed size of a zip upload's entries", 1, INT64_MAX);
  s.AddDouble("ingest-zip-max-ratio", d.zip_max_ratio,
              "largest uncompressed/compressed ratio of one zip entry (compression bombs)");
  s.AddInt("ingest-zip-max-entries", d.zip_max_entries, "most entries in a zip upload", 1,
           INT64_MAX);
  s.AddInt("ingest-max-image-bytes", d.max_image_bytes, "largest encoded image", 1, INT64_MAX);
  s.AddInt("ingest-max-image-pixels", d.max_image_pixels,
           "largest width*height of an image (checked before decoding)", 1, INT64_MAX);
  s.AddInt("ingest-text-feature-dim", d.text_feature_dim,
           "dimension of hashed text features for a text project's first ingestion", 8, 1 << 20);
  s.AddInt("ingest-image-grid", d.image_grid, "images are resized to grid x grid cells", 1, 256);
  s.AddChoice("ingest-image-color", d.image_rgb ? "rgb" : "grey", {"grey", "rgb"},
              "image grid features in grey (1 value per cell) or rgb (3)");
  s.AddInt("ingest-histogram-bins", d.histogram_bins, "colour histogram bins per channel", 1, 256);
  s.AddInt("ingest-max-rejects-listed", d.max_rejects_listed,
           "rejected rows listed in an upload's answer", 1, 1000000);
  s.AddInt("ingest-copy-buffer-bytes", d.copy_buffer_bytes, "COPY data sent per round", 4096,
           int64_t{1} << 30);
  s.AddString("ingest-spool-dir", d.spool_dir,
              "where zip uploads, and the COPY data of uploads into projects without items, "
              "are spooled (unlinked temporary files)");
  s.AddInt("ingest-max-concurrent-uploads", d.max_concurrent_uploads,
           "uploads running at once (each holds a database connection); more get "
           "RESOURCE_EXHAUSTED",
           1, 1000);
}

IngestOptions IngestOptionsFromSettings(const config::Settings& s) {
  IngestOptions o;
  // A setting never declared keeps its default, so a main() that forgot
  // DeclareIngestSettings still runs (with the defaults).
  auto get_int = [&](const char* name, auto* field) {
    try {
      *field = static_cast<std::remove_reference_t<decltype(*field)>>(s.GetInt(name));
    } catch (const std::logic_error&) {
    }
  };
  get_int("ingest-max-upload-bytes", &o.max_upload_bytes);
  get_int("ingest-max-row-bytes", &o.max_row_bytes);
  get_int("ingest-zip-max-uncompressed-bytes", &o.zip_max_uncompressed_bytes);
  get_int("ingest-zip-max-entries", &o.zip_max_entries);
  get_int("ingest-max-image-bytes", &o.max_image_bytes);
  get_int("ingest-max-image-pixels", &o.max_image_pixels);
  get_int("ingest-text-feature-dim", &o.text_feature_dim);
  get_int("ingest-image-grid", &o.image_grid);
  get_int("ingest-histogram-bins", &o.histogram_bins);
  get_int("ingest-max-rejects-listed", &o.max_rejects_listed);
  get_int("ingest-copy-buffer-bytes", &o.copy_buffer_bytes);
  get_int("ingest-max-concurrent-uploads", &o.max_concurrent_uploads);
  try {
    o.zip_max_ratio = s.GetDouble("ingest-zip-max-ratio");
    o.image_rgb = s.GetString("ingest-image-color") == "rgb";
    o.spool_dir = s.GetString("ingest-spool-dir");
  } catch (const std::logic_error&) {
  }
  return o;
}

IngestServiceImpl::IngestServiceImpl(bootstrap::Runtime& runtime)
    : IngestServiceImpl(runtime.pool(), IngestOptionsFromSettings(runtime.settings())) {}

IngestServiceImpl::IngestServiceImpl(pg::Pool& pool, IngestOptions options)
    : ingestor_(std::make_unique<Ingestor>(pool, std::move(options))) {}

IngestServiceImpl::~IngestServiceImpl() = default;

grpc::Status IngestServiceImpl::Upload(grpc::ServerContext* context,
                                       grpc::ServerReader<v1::UploadRequest>* reader,
                                       v1::UploadResponse* response) {
  grpc_server::RequestScope scope(context);
  try {
    v1::UploadRequest msg;
    if (!reader->Read(&msg)) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "empty upload: send the header first"};
    }
    if (!msg.has_header()) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "the first message of an upload must carry the header"};
    }
    UploadSpec spec;
    if (auto st = SpecFromHeader(msg.header(), &spec); !st.ok()) return ToGrpc(st);
    std::unique_ptr<UploadSession> session;
    if (auto st = ingestor_->BeginUpload(spec, &session); !st.ok()) return ToGrpc(st);
    int64_t message_no = 1;
    while (reader->Read(&msg)) {
      ++message_no;
      if (msg.has_header()) {
        return {grpc::StatusCode::INVALID_ARGUMENT,
                "message " + std::to_string(message_no) +
                    " carries a second header: only the first message may"};
      }
      if (auto st = session->Feed(msg.chunk()); !st.ok()) return ToGrpc(st);
    }
    if (context->IsCancelled()) return {grpc::StatusCode::CANCELLED, "upload cancelled"};
    UploadResult result;
    auto st = session->Finish(&result);
    if (!st.ok()) return ToGrpc(st);
    FillResponse(result, response);
    spdlog::info("upload into project {} ({}): {} rows, {} inserted, {} rejected", spec.project_id,
                 spec.file_name, result.rows_read, result.items_inserted, result.rows_rejected);
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    spdlog::error("upload failed: {}", e.what());
    return {grpc::StatusCode::INTERNAL, std::string("upload failed: ") + e.what()};
  }
}

grpc::Status IngestServiceImpl::PushItem(grpc::ServerContext* context,
                                         const v1::PushItemRequest* request,
                                         v1::PushItemResponse* response) {
  grpc_server::RequestScope scope(context);
  try {
    ingest::PushItem item;
    item.project_id = request->project_id();
    item.external_id = request->external_id();
    if (request->has_sample_ts()) {
      item.sample_ts_micros =
          request->sample_ts().seconds() * 1000000 + request->sample_ts().nanos() / 1000;
    }
    switch (request->payload_case()) {
      case v1::PushItemRequest::kImageBase64:
        item.kind = ingest::PushItem::Kind::kImage;
        if (!DecodeBase64(request->image_base64(), &item.image)) {
          return {grpc::StatusCode::INVALID_ARGUMENT, "image_base64: not valid base64"};
        }
        break;
      case v1::PushItemRequest::kImage:
        item.kind = ingest::PushItem::Kind::kImage;
        item.image = request->image();
        break;
      case v1::PushItemRequest::kText:
        item.kind = ingest::PushItem::Kind::kText;
        item.text = request->text();
        break;
      case v1::PushItemRequest::kFeatures:
        item.kind = ingest::PushItem::Kind::kFeatures;
        item.features.assign(request->features().values().begin(),
                             request->features().values().end());
        break;
      default:
        return {grpc::StatusCode::INVALID_ARGUMENT,
                "payload: set one of image_base64, image, text or features"};
    }
    item.labels.assign(request->labels().begin(), request->labels().end());
    item.label_fields_json = request->label_fields_json();
    item.row_json = request->row_json();
    PushResult result;
    if (auto st = ingestor_->Push(item, &result); !st.ok()) return ToGrpc(st);
    response->set_item_id(result.item_id);
    response->set_created(result.created);
    response->set_feature_dim(result.feature_dim);
    response->set_labeled(result.labeled);
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    spdlog::error("push failed: {}", e.what());
    return {grpc::StatusCode::INTERNAL, std::string("push failed: ") + e.what()};
  }
}

}  // namespace labelloop::labeling::ingest
