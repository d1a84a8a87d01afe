// Conversions between the labeling storage records and the proto messages.
#pragma once

#include <google/protobuf/timestamp.pb.h>
#include <grpcpp/grpcpp.h>

#include "labelloop/v1/labeling.pb.h"
#include "services/labeling/domain/outcome.hpp"
#include "services/labeling/storage/assignment_store.hpp"
#include "services/labeling/storage/project_store.hpp"
#include "services/labeling/storage/query_store.hpp"

namespace labelloop::labeling {

grpc::Status ToStatus(const Error& error);
inline grpc::Status Invalid(const std::string& message) {
  return {grpc::StatusCode::INVALID_ARGUMENT, message};
}

void SetTimestamp(int64_t micros, google::protobuf::Timestamp* ts);
int64_t MicrosOf(const google::protobuf::Timestamp& ts);

void ToProto(const storage::ProjectRecord& p, v1::Project* out);
void ToProto(const storage::LeaseRecord& l, v1::Lease* out);
void ToProto(const storage::ItemRecord& item, v1::Item* out);
void ToProto(const storage::SubmitResult& r, v1::SubmitLabelResponse* out);
void ToProto(int64_t project_id, const storage::StatsRecord& s, v1::ProjectStats* out);

}  // namespace labelloop::labeling
