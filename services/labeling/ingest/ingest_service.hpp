// gRPC adapter of labeling ingestion (LabelingIngestService): proto <-> domain types,
// domain errors -> grpc::Status. The work is done by Ingestor (ingestor.hpp), which
// tests and benchmarks use directly.
//
// Wiring, in services/labeling/main.cpp:
//   bootstrap::Runtime runtime(...);
//   labeling::ingest::DeclareIngestSettings(runtime.settings());   // before Init
//   if (auto code = runtime.Init(argc, argv)) return *code;
//   labeling::ingest::IngestServiceImpl ingest(runtime);
//   return runtime.Serve({&service, &ingest});
#pragma once

#include <memory>

#include "common/bootstrap/runtime.hpp"
#include "common/config/config.hpp"
#include "labelloop/v1/labeling_ingest.grpc.pb.h"
#include "services/labeling/ingest/options.hpp"

namespace labelloop::labeling::ingest {

class Ingestor;

// Declares the ingest-* settings (limits, feature extraction). Call before Runtime::Init.
void DeclareIngestSettings(config::Settings& settings);

// The options those settings hold (defaults for any setting never declared).
IngestOptions IngestOptionsFromSettings(const config::Settings& settings);

class IngestServiceImpl final : public v1::LabelingIngestService::Service {
 public:
  explicit IngestServiceImpl(bootstrap::Runtime& runtime);
  // For tests: any pool and options.
  IngestServiceImpl(pg::Pool& pool, IngestOptions options);
  ~IngestServiceImpl() override;

  grpc::Status Upload(grpc::ServerContext* context, grpc::ServerReader<v1::UploadRequest>* reader,
                      v1::UploadResponse* response) override;
  grpc::Status PushItem(grpc::ServerContext* context, const v1::PushItemRequest* request,
                        v1::PushItemResponse* response) override;

 private:
  std::unique_ptr<Ingestor> ingestor_;
};

}  // namespace labelloop::labeling::ingest
