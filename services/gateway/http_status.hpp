// The one mapping from gRPC status codes to HTTP status codes, and the JSON error body.
#pragma once

#include <string>

namespace labelloop::gateway {

// gRPC code number (grpc::StatusCode) → HTTP status.
int HttpStatusFor(int grpc_code);
// "INVALID_ARGUMENT" etc.
std::string GrpcCodeName(int grpc_code);
// {"code":"NOT_FOUND","message":"...","request_id":"..."}
std::string ErrorJson(int grpc_code, const std::string& message, const std::string& request_id);

}  // namespace labelloop::gateway
