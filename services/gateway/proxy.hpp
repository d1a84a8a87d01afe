// The gRPC side of the proxy: a generic callback service that receives every method
// the server has no registered service for, passes allow-listed ones through the Gate
// and pipes the raw messages to the owning backend and back (unary, client-streaming
// and server-streaming alike: on the wire they are all one stream).
#pragma once

#include <grpcpp/generic/async_generic_service.h>

#include "services/gateway/gate.hpp"

namespace labelloop::gateway {

class ProxyService final : public grpc::CallbackGenericService {
 public:
  explicit ProxyService(Gate& gate) : gate_(gate) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  Gate& gate_;
};

// Credentials from gRPC metadata.
Credentials CredentialsOf(const grpc::ServerContextBase& ctx);

}  // namespace labelloop::gateway
