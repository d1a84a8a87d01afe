#include "services/labeling/ingest/ingestor.hpp"

namespace labelloop::labeling::ingest {

Ingestor::Ingestor(pg::Pool& pool, IngestOptions options)
    : pool_(pool), options_(std::move(options)) {}

Status Ingestor::BeginUpload(const UploadSpec& /*spec*/,
                             std::unique_ptr<UploadSession>* /*session*/) {
  return Status::Error(Code::kUnavailable, "uploads are being implemented");
}

Status Ingestor::Push(const PushItem& /*item*/, PushResult* /*result*/) {
  return Status::Error(Code::kUnavailable, "push is being implemented");
}

}  // namespace labelloop::labeling::ingest
