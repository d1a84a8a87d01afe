#include "services/dl_manager/service.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/grpc_server/request_context.hpp"

namespace labelloop::dl_manager {
namespace {

v1::DownloadStatus StatusOf(const std::string& s) {
  if (s == "REQUESTED") return v1::DOWNLOAD_STATUS_REQUESTED;
  if (s == "BUILDING") return v1::DOWNLOAD_STATUS_BUILDING;
  if (s == "AVAILABLE") return v1::DOWNLOAD_STATUS_AVAILABLE;
  if (s == "FAILED") return v1::DOWNLOAD_STATUS_FAILED;
  return v1::DOWNLOAD_STATUS_UNSPECIFIED;
}

void SetTime(double epoch, google::protobuf::Timestamp* out) {
  double secs = std::floor(epoch);
  out->set_seconds(static_cast<int64_t>(secs));
  out->set_nanos(static_cast<int32_t>((epoch - secs) * 1e9));
}

// Storage errors become UNAVAILABLE with a message the caller can act on.
grpc::Status Internal(const std::exception& e) {
  spdlog::error("dl_manager request failed: {}", e.what());
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pg::PoolExhausted*>(&e) != nullptr) {
    return {grpc::StatusCode::UNAVAILABLE, "the database is unreachable; retry shortly"};
  }
  return {grpc::StatusCode::INTERNAL, std::string("internal error: ") + e.what()};
}

}  // namespace

void DlManagerServiceImpl::ToProto(const DownloadRow& row, v1::Download* out) {
  out->set_download_id(row.id);
  out->set_project_id(row.project_id);
  out->set_model_id(row.model_id);
  out->set_status(StatusOf(row.status));
  out->set_phase(row.phase);
  out->set_rows_written(row.rows_written);
  out->set_attempts(row.attempts);
  out->set_message(row.message);
  out->set_size_bytes(row.size_bytes);
  out->set_sha256(row.sha256);
  out->set_fingerprint(row.fingerprint);
  out->set_requested_by(row.requested_by);
  try {
    auto counts = nlohmann::json::parse(row.entry_counts);
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it.value().is_number_integer()) {
        (*out->mutable_entry_counts())[it.key()] = it.value().get<int64_t>();
      }
    }
  } catch (const std::exception&) {
    // entry_counts is written by this service as a JSON object; nothing to show otherwise.
  }
  if (row.created_at > 0) SetTime(row.created_at, out->mutable_created_at());
  if (row.started_at > 0) SetTime(row.started_at, out->mutable_started_at());
  if (row.finished_at > 0) SetTime(row.finished_at, out->mutable_finished_at());
}

grpc::Status DlManagerServiceImpl::GetInfo(grpc::ServerContext* context,
                                           const v1::GetInfoRequest* /*request*/,
                                           v1::ServiceInfo* reply) {
  grpc_server::RequestScope scope(context);
  runtime_.FillInfo(reply);
  return grpc::Status::OK;
}

grpc::Status DlManagerServiceImpl::RequestDownload(grpc::ServerContext* context,
                                                   const v1::RequestDownloadRequest* request,
                                                   v1::RequestDownloadResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->project_id() <= 0) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "project_id must be a positive project id"};
  }
  if (request->model_id() < 0) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "model_id must be a model id, or 0 for the project's latest model"};
  }
  if (request->requested_by().size() > 200) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "requested_by is longer than 200 characters"};
  }
  try {
    const int64_t model_id = store_.ResolveModel(request->project_id(), request->model_id());
    auto outcome = store_.Request(request->project_id(), model_id, request->requested_by(),
                                  options_.max_attempts);
    ToProto(outcome.row, reply->mutable_download());
    reply->set_created(outcome.created);
    if (outcome.created) {
      spdlog::info("download {} requested (project {}, model {})", outcome.row.id,
                   outcome.row.project_id, outcome.row.model_id);
      on_requested_(outcome.row);
    }
    return grpc::Status::OK;
  } catch (const TargetNotFound& e) {
    return {grpc::StatusCode::NOT_FOUND, e.what()};
  } catch (const std::exception& e) {
    return Internal(e);
  }
}

grpc::Status DlManagerServiceImpl::GetDownload(grpc::ServerContext* context,
                                               const v1::GetDownloadRequest* request,
                                               v1::Download* reply) {
  grpc_server::RequestScope scope(context);
  try {
    auto row = store_.Get(request->download_id());
    if (!row) {
      return {grpc::StatusCode::NOT_FOUND,
              "download " + std::to_string(request->download_id()) + " does not exist"};
    }
    ToProto(*row, reply);
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return Internal(e);
  }
}

grpc::Status DlManagerServiceImpl::ListDownloads(grpc::ServerContext* context,
                                                 const v1::ListDownloadsRequest* request,
                                                 v1::ListDownloadsResponse* reply) {
  grpc_server::RequestScope scope(context);
  if (request->page_size() < 0 || request->page_size() > 500) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "page_size must be between 1 and 500 (0: 50)"};
  }
  const int limit = request->page_size() == 0 ? 50 : request->page_size();
  try {
    auto rows = store_.List(request->project_id(), request->before_id(), limit);
    for (const auto& row : rows) ToProto(row, reply->add_downloads());
    if (static_cast<int>(rows.size()) == limit) reply->set_next_before_id(rows.back().id);
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return Internal(e);
  }
}

grpc::Status DlManagerServiceImpl::FetchArchive(grpc::ServerContext* context,
                                                const v1::FetchArchiveRequest* request,
                                                grpc::ServerWriter<v1::ArchiveChunk>* writer) {
  grpc_server::RequestScope scope(context);
  try {
    auto row = store_.Get(request->download_id());
    if (!row) {
      return {grpc::StatusCode::NOT_FOUND,
              "download " + std::to_string(request->download_id()) + " does not exist"};
    }
    if (row->status != "AVAILABLE") {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              "download " + std::to_string(row->id) + " is " + row->status +
                  (row->status == "FAILED" ? " (" + row->message + ")"
                                           : "; wait until it is AVAILABLE")};
    }
    if (request->offset() < 0 || request->offset() > row->size_bytes) {
      return {grpc::StatusCode::OUT_OF_RANGE,
              "offset must be between 0 and the archive size " + std::to_string(row->size_bytes)};
    }
    bool cancelled = false;
    bool complete =
        store_.ReadArchive(*row, request->offset(), [&](int64_t offset, std::string_view data) {
          if (context->IsCancelled()) {
            cancelled = true;
            return false;
          }
          v1::ArchiveChunk chunk;
          chunk.set_offset(offset);
          chunk.set_data(data.data(), data.size());
          chunk.set_total_size(row->size_bytes);
          chunk.set_sha256(row->sha256);
          return writer->Write(chunk);
        });
    if (cancelled) return {grpc::StatusCode::CANCELLED, "the client cancelled the transfer"};
    if (!complete) {
      return {grpc::StatusCode::NOT_FOUND,
              "download " + std::to_string(row->id) + " was deleted during the transfer"};
    }
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return Internal(e);
  }
}

grpc::Status DlManagerServiceImpl::DeleteDownload(grpc::ServerContext* context,
                                                  const v1::DeleteDownloadRequest* request,
                                                  v1::DeleteDownloadResponse* reply) {
  grpc_server::RequestScope scope(context);
  try {
    if (!store_.Delete(request->download_id())) {
      return {grpc::StatusCode::NOT_FOUND,
              "download " + std::to_string(request->download_id()) + " does not exist"};
    }
    reply->set_deleted(true);
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    return Internal(e);
  }
}

}  // namespace labelloop::dl_manager
