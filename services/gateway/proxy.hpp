// The gRPC side of the proxy: an async generic service that receives every method the
// server has no registered service for, passes allow-listed ones through the Gate and
// pipes the raw messages to the owning backend and back (unary, client-streaming and
// server-streaming alike: on the wire they are all one stream).
//
// It runs on gRPC's completion-queue API with its own polling threads: each thread owns
// one completion queue, and every call taken on that queue — the caller's side and the
// upstream call to the backend alike — reports its events there, so one thread handles a
// call from start to end, inline, with no lock and no hand-off to another thread. Other
// parts of the gateway issue their own gRPC calls on the first queue (queue()), with a
// CompletionTag as tag, so that no other thread polls gRPC (see completion_tag.hpp).
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server_builder.h>

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common/grpc_server/server.hpp"
#include "common/metrics/metrics.hpp"
#include "services/gateway/completion_tag.hpp"
#include "services/gateway/gate.hpp"

namespace labelloop::gateway {

class BlockingPool;

class ProxyService final : public grpc_server::AsyncMethods {
 public:
  // `threads` polling threads sharing `queues` completion queues; `blocking_threads` for
  // the gate's lookups that wait on I/O. Counts its calls in `registry` (when not null)
  // like the server's metrics interceptor.
  ProxyService(Gate& gate, metrics::Registry* registry, int queues, int threads,
               int blocking_threads);
  ~ProxyService() override;
  ProxyService(const ProxyService&) = delete;
  ProxyService& operator=(const ProxyService&) = delete;

  // Before the server is built: registers the generic service and the queues.
  void AddQueues(grpc::ServerBuilder& builder) override;
  // Once the server has started: takes calls, then runs the hook set with OnStart.
  void Start() override;
  // `hook` runs at the end of Start, once queue() is polled.
  void OnStart(std::function<void()> hook) { on_start_ = std::move(hook); }
  // The first completion queue (null before AddQueues). Calls issued on it must use a
  // CompletionTag as tag, and must have ended before Stop.
  grpc::CompletionQueue* queue() const;
  // After the server has shut down (every caller's side over) and before it is
  // destroyed: waits for the calls still ending their upstream side, drains the queues
  // and joins the threads. Idempotent; the destructor calls it.
  void Stop() override;

 private:
  void Poll(size_t index);

  Gate& gate_;
  metrics::Registry* registry_;
  int queues_count_;
  int threads_;
  grpc::AsyncGenericService service_;
  std::unique_ptr<BlockingPool> pool_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> pollers_;
  std::function<void()> on_start_;
  bool stopped_ = false;
};

// Credentials from gRPC metadata.
Credentials CredentialsOf(const grpc::ServerContextBase& ctx);

}  // namespace labelloop::gateway
