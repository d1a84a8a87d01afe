// Protobuf messages as JSON (proto3 JSON mapping, as protobuf's MessageToJsonString with
// always_print_primitive_fields prints them) straight from reflection. protobuf 3.21's
// printer resolves the message's type into google.protobuf.Type descriptions on every
// call, which made it the largest CPU cost of an HTTP call through the gateway.
// Covers every field kind and the one well-known type (Timestamp) the APIs use; other
// well-known types fall back to protobuf's printer.
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace labelloop::gateway {

std::string MessageToJson(const google::protobuf::Message& message);

}  // namespace labelloop::gateway
