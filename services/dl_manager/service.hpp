// gRPC adapter of the dl_manager service: proto messages in and out, domain errors to Status.
#pragma once

#include <functional>

#include "common/bootstrap/runtime.hpp"
#include "labelloop/v1/dl_manager.grpc.pb.h"
#include "services/dl_manager/storage/download_store.hpp"

namespace labelloop::dl_manager {

struct ServiceOptions {
  int max_attempts = 3;
};

class DlManagerServiceImpl final : public v1::DlManagerService::Service {
 public:
  // on_requested runs after a request is committed (publishes the bus message).
  DlManagerServiceImpl(const bootstrap::Runtime& runtime, DownloadStore& store,
                       ServiceOptions options, std::function<void(const DownloadRow&)> on_requested)
      : runtime_(runtime),
        store_(store),
        options_(options),
        on_requested_(std::move(on_requested)) {}

  grpc::Status GetInfo(grpc::ServerContext* context, const v1::GetInfoRequest* request,
                       v1::ServiceInfo* reply) override;
  grpc::Status RequestDownload(grpc::ServerContext* context,
                               const v1::RequestDownloadRequest* request,
                               v1::RequestDownloadResponse* reply) override;
  grpc::Status GetDownload(grpc::ServerContext* context, const v1::GetDownloadRequest* request,
                           v1::Download* reply) override;
  grpc::Status ListDownloads(grpc::ServerContext* context, const v1::ListDownloadsRequest* request,
                             v1::ListDownloadsResponse* reply) override;
  grpc::Status FetchArchive(grpc::ServerContext* context, const v1::FetchArchiveRequest* request,
                            grpc::ServerWriter<v1::ArchiveChunk>* writer) override;
  grpc::Status DeleteDownload(grpc::ServerContext* context,
                              const v1::DeleteDownloadRequest* request,
                              v1::DeleteDownloadResponse* reply) override;

  static void ToProto(const DownloadRow& row, v1::Download* out);

 private:
  const bootstrap::Runtime& runtime_;
  DownloadStore& store_;
  ServiceOptions options_;
  std::function<void(const DownloadRow&)> on_requested_;
};

}  // namespace labelloop::dl_manager
