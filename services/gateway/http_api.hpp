// The HTTP/JSON face of the gateway (http_server.hpp: an event loop for keep-alive
// connections, proxied unary calls made asynchronously): one route per RPC, `POST
// /v1/<Service>/<Method>`, protobuf's JSON mapping in and out, errors as
// {"code","message","request_id"} with the HTTP status of http_status.hpp, CORS, Server-Sent Events
// for server streams and WatchProject, and client streams from the request body. Proxied methods go
// through the same Gate as gRPC; GatewayService methods are passed to the gateway's own gRPC port.
#pragma once

#include <grpcpp/completion_queue.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "labelloop/v1/common.pb.h"
#include "services/gateway/events.hpp"
#include "services/gateway/gate.hpp"

namespace labelloop::gateway {

struct HttpOptions {
  std::string host = "0.0.0.0";
  int port = 8080;
  int threads = 128;  // workers for streamed requests (event streams, uploads, GatewayService)
  // Threads of the event loop, each serving any number of connections. One by default:
  // with two, the one waiting in epoll woke the other for about every request.
  int io_threads = 1;
  std::vector<std::string> cors_origins;  // "*" allows any origin; empty: no CORS headers
  std::string internal_secret;            // see AuthSettings::internal_secret
  size_t upload_message_bytes = 1 << 20;  // body bytes per client-stream message
  int stall_timeout_seconds = 60;         // see http::ServerOptions::stall_timeout_seconds
};

class HttpApi {
 public:
  HttpApi(HttpOptions options, Gate& gate, EventHub& hub, std::function<int()> grpc_port,
          std::string grpc_host, std::function<bool()> healthy,
          std::function<void(v1::ServiceInfo*)> fill_info);
  ~HttpApi();
  // Binds the port (false when it cannot); connections wait until Serve.
  bool Listen();
  // Serves on background threads; proxied unary calls are made on `cq`, whose polling
  // thread finishes them (the gRPC proxy's: see completion_tag.hpp). `cq` must be polled
  // until Stop has returned.
  void Serve(grpc::CompletionQueue* cq);
  // Stops serving and waits for the calls in flight.
  void Stop();
  int port() const { return port_; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace labelloop::gateway
