// Reading and editing request/response messages by field name through protobuf
// reflection, for the generic proxy (which sees only method names and bytes).
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace labelloop::gateway {

std::unique_ptr<google::protobuf::Message> NewMessage(const google::protobuf::Descriptor* type);

// The integer at a dotted path ("project_id", "header.project_id"); nullopt when a part
// is missing, unset or not an integer.
std::optional<int64_t> GetInt(const google::protobuf::Message& m, std::string_view path);
bool SetInt(google::protobuf::Message* m, std::string_view field, int64_t value);
// True when the message type has the dotted path.
bool HasPath(const google::protobuf::Descriptor* type, std::string_view path);

// Sets each present top-level string field of `fields` to `value`; true when anything
// changed.
bool OverwriteStrings(google::protobuf::Message* m, const std::vector<std::string>& fields,
                      const std::string& value);

// Every integer field named item_id, job_id, model_id or download_id (and `id` inside an
// Item/TrainingJob/ModelInfo/Download message) anywhere in the message: (kind, id).
std::vector<std::pair<std::string, int64_t>> CollectObjectIds(const google::protobuf::Message& m);

// Removes the elements of every top-level repeated message field whose `id` or
// `project_id` is not in `allowed`.
void FilterByProject(google::protobuf::Message* m, const std::set<int64_t>& allowed);

// The project id of a CreateProject answer: `id`/`project_id` at the top level or in
// a `project` sub-message.
std::optional<int64_t> CreatedProjectId(const google::protobuf::Message& m);

std::string ToString(const grpc::ByteBuffer& buffer);
grpc::ByteBuffer ToBuffer(const std::string& bytes);

}  // namespace labelloop::gateway
