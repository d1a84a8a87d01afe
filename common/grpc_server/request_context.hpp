// Per-call context for handlers: the request id (taken from the caller's
// `x-request-id` metadata or generated) set for logging for the handler's duration.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/log/log.hpp"

namespace labelloop::grpc_server {

inline constexpr const char* kRequestIdHeader = "x-request-id";

// A fresh random request id (16 hex characters).
std::string NewRequestId();

// The caller's request id, or a new one when the caller sent none.
std::string RequestIdOf(const grpc::ServerContext& context);

// Put at the top of a handler: `RequestScope scope(context);`
class RequestScope {
 public:
  explicit RequestScope(const grpc::ServerContext* context);
  const std::string& request_id() const { return request_id_; }

 private:
  std::string request_id_;
  log::ScopedRequestId log_scope_;
};

// Adds the current thread's request id to an outgoing call.
void PropagateRequestId(grpc::ClientContext* context);

}  // namespace labelloop::grpc_server
