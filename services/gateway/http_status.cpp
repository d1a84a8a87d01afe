#include "services/gateway/http_status.hpp"

#include <nlohmann/json.hpp>

#include "common/grpc_server/status_names.hpp"

namespace labelloop::gateway {

int HttpStatusFor(int grpc_code) {
  switch (grpc_code) {
    case 0:  // OK
      return 200;
    case 1:  // CANCELLED
      return 499;
    case 3:   // INVALID_ARGUMENT
    case 11:  // OUT_OF_RANGE
      return 400;
    case 4:  // DEADLINE_EXCEEDED
      return 504;
    case 5:  // NOT_FOUND
      return 404;
    case 6:   // ALREADY_EXISTS
    case 10:  // ABORTED
      return 409;
    case 7:  // PERMISSION_DENIED
      return 403;
    case 8:  // RESOURCE_EXHAUSTED
      return 429;
    case 9:  // FAILED_PRECONDITION
      return 412;
    case 12:  // UNIMPLEMENTED
      return 501;
    case 14:  // UNAVAILABLE
      return 503;
    case 16:  // UNAUTHENTICATED
      return 401;
    default:  // UNKNOWN, INTERNAL, DATA_LOSS
      return 500;
  }
}

std::string GrpcCodeName(int grpc_code) {
  return grpc_server::StatusCodeName(static_cast<grpc::StatusCode>(grpc_code));
}

std::string ErrorJson(int grpc_code, const std::string& message, const std::string& request_id) {
  nlohmann::json j;
  j["code"] = GrpcCodeName(grpc_code);
  j["message"] = message;
  if (!request_id.empty()) j["request_id"] = request_id;
  return j.dump();
}

}  // namespace labelloop::gateway
