// The canonical names of gRPC status codes ("NOT_FOUND", ...), for metrics labels, HTTP
// error bodies and command-line messages. Header-only: clients use it without linking
// the server library.
#pragma once

#include <grpcpp/support/status_code_enum.h>

#include <cstddef>
#include <iterator>

namespace labelloop::grpc_server {

// "UNKNOWN" for a value outside the enum.
inline const char* StatusCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const auto i = static_cast<size_t>(code);
  return i < std::size(kNames) ? kNames[i] : "UNKNOWN";
}

}  // namespace labelloop::grpc_server
