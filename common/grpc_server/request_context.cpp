#include "common/grpc_server/request_context.hpp"

#include <random>

namespace labelloop::grpc_server {

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t v = rng();
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    id[static_cast<size_t>(i)] = kHex[v & 0xf];
    v >>= 4;
  }
  return id;
}

std::string RequestIdOf(const grpc::ServerContext& context) {
  const auto& md = context.client_metadata();
  auto it = md.find(kRequestIdHeader);
  if (it != md.end() && !it->second.empty() && it->second.size() <= 128) {
    return std::string(it->second.data(), it->second.size());
  }
  return NewRequestId();
}

RequestScope::RequestScope(const grpc::ServerContext* context)
    : request_id_(context != nullptr ? RequestIdOf(*context) : NewRequestId()),
      log_scope_(request_id_) {}

void PropagateRequestId(grpc::ClientContext* context) {
  const std::string& id = log::CurrentRequestId();
  context->AddMetadata(kRequestIdHeader, id.empty() ? NewRequestId() : id);
}

}  // namespace labelloop::grpc_server
