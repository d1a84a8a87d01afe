#include "services/gateway/proxy.hpp"

#include <grpcpp/alarm.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "common/grpc_server/request_context.hpp"
#include "common/grpc_server/server.hpp"
#include "common/log/log.hpp"
#include "services/gateway/proto_util.hpp"

namespace labelloop::gateway {
namespace {

// Calls waiting for a caller on each completion queue (one is re-armed per call taken).
constexpr int kListening = 32;

std::string Meta(const grpc::ServerContextBase& ctx, const char* key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

class ProxyCall;

}  // namespace

// Threads for the parts of a call that may wait on I/O (see ProxyCall::OnRead).
class BlockingPool {
 public:
  explicit BlockingPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~BlockingPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  void Post(std::function<void()> work) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(work));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      auto work = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      try {
        work();
      } catch (const std::exception& e) {
        spdlog::error("proxy: blocking step failed: {}", e.what());
      }
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

namespace {

// A completion-queue tag: which operation of which call completed.
struct Tag final : CompletionTag {
  Tag(ProxyCall* c, void (ProxyCall::*o)(bool ok)) : call(c), on(o) {}
  void Complete(bool ok) override;

  ProxyCall* call;
  void (ProxyCall::*on)(bool ok);
};

// One proxied call: the caller's side (a generic server stream) and the upstream call to
// the backend (a generic unary call, or a generic stream for streaming methods), both on
// the completion queue of the thread that took the call — so every event of the call is
// handled by that one thread, in order, without a lock. `pending_` counts the operations
// whose tags are still to come back; the call deletes itself when none is left.
//
// Unary:      request → read → Admit → upstream unary call → write-and-finish.
// Streaming:  request → read → Admit → upstream stream (corked metadata + first message,
//             half-closed at once unless client-streaming); then each caller message is
//             written upstream before the next is read, each upstream answer is written
//             to the caller before the next is read; the upstream's status ends the call.
//
// The gate runs inline when it can decide from its caches (Gate::AdmitCached); when it
// needs the database or a backend lookup, it runs on the blocking
// pool and an alarm brings the call back to its queue — so a slow lookup never holds up
// the queue's other calls. The same holds for answers whose hook writes or reads the
// database (CreateProject, ListProjects).
// Calls alive (listening, running, or finishing their upstream side), for Stop.
std::atomic<int> g_live_calls{0};

class ProxyCall {
 public:
  ProxyCall(Gate& gate, grpc::AsyncGenericService& service, grpc::ServerCompletionQueue* cq,
            BlockingPool& pool, metrics::Registry* registry)
      : gate_(gate), service_(service), cq_(cq), pool_(pool), registry_(registry), stream_(&ctx_) {
    ++g_live_calls;
  }
  ~ProxyCall() { --g_live_calls; }
  ProxyCall(const ProxyCall&) = delete;
  ProxyCall& operator=(const ProxyCall&) = delete;

  // Waits for the next caller on this queue.
  void Listen() {
    ctx_.AsyncNotifyWhenDone(AsTag(&done_tag_));
    ++pending_;
    service_.RequestCall(&ctx_, &stream_, cq_, cq_, AsTag(&requested_tag_));
  }

  // Runs the operation behind `tag` (ok: whether it succeeded), then deletes the call once
  // nothing of it is pending.
  static void Handle(Tag* t, bool ok) {
    ProxyCall* call = t->call;
    bool over = false;
    {
      std::lock_guard lock(call->mu_);
      --call->pending_;
      try {
        (call->*(t->on))(ok);
      } catch (const std::exception& e) {
        // Nothing in the handlers is meant to throw (the gate maps its own failures).
        spdlog::error("{}: proxy step failed: {}", call->ctx_.method(), e.what());
        call->Abort();
      }
      over = call->pending_ == 0;
    }
    // No tag of the call is left, so no other thread can reach it any more.
    if (over) delete call;
  }

 private:
  // --- the caller's side ---

  void OnRequested(bool ok) {
    if (!ok) return;  // the server is shutting down; no call was taken
    ++pending_;       // the done tag comes back once the call is over
    started_ = std::chrono::steady_clock::now();
    (new ProxyCall(gate_, service_, cq_, pool_, registry_))->Listen();
    request_id_ = Meta(ctx_, grpc_server::kRequestIdHeader);
    if (request_id_.empty() || request_id_.size() > 128) request_id_ = grpc_server::NewRequestId();
    admission_.request_id = request_id_;
    ctx_.AddInitialMetadata("x-request-id", request_id_);
    route_ = gate_.Find(ctx_.method());
    if (route_ == nullptr) {
      FinishCaller(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                "method " + ctx_.method() + " is not part of the public API"));
      return;
    }
    ReadCaller();
  }

  void OnRead(bool ok) {
    if (!ok) {
      // The caller half-closed (or went away).
      caller_read_done_ = true;
      if (!upstream_started_) {
        FinishCaller(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      } else if (upstream_live_ && route_->client_streaming && !upstream_writes_done_) {
        upstream_writes_done_ = true;
        ++pending_;
        upstream_->WritesDone(AsTag(&upstream_writes_done_tag_));
      }
      return;
    }
    std::string bytes = ToString(in_);
    if (!upstream_started_) {
      upstream_started_ = true;
      Credentials credentials = CredentialsOf(ctx_);
      std::optional<grpc::Status> status;
      int64_t retry_after = 0;
      {
        log::ScopedRequestId scope(request_id_);
        status = gate_.AdmitCached(*route_, credentials, &bytes, &admission_, &retry_after);
      }
      if (status) {
        Admitted(*status, bytes, retry_after);
        return;
      }
      blocking_bytes_ = std::move(bytes);
      Offload(
          [this, credentials = std::move(credentials)] {
            blocking_status_ = gate_.Admit(*route_, credentials, &blocking_bytes_, &admission_,
                                           &blocking_retry_after_);
          },
          &admitted_tag_);
      return;
    }
    // A later message of a client stream.
    grpc::Status status = gate_.CheckNext(*route_, admission_, bytes);
    if (!status.ok()) {
      Fail(status);
      return;
    }
    if (!upstream_live_ || pending_status_) return;
    out_req_ = ToBuffer(bytes);
    ++pending_;
    upstream_->Write(out_req_, AsTag(&upstream_write_tag_));
  }

  void OnAdmitted(bool /*ok*/) {
    if (caller_gone_) {
      FinishCaller(grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away"));
      return;
    }
    Admitted(blocking_status_, blocking_bytes_, blocking_retry_after_);
  }

  void Admitted(const grpc::Status& status, const std::string& bytes, int64_t retry_after) {
    if (!status.ok()) {
      if (retry_after > 0) ctx_.AddTrailingMetadata("retry-after", std::to_string(retry_after));
      // Tells tests (and operators) the refusal came from the gateway's policy, not from
      // the service; it reveals nothing the status does not.
      ctx_.AddTrailingMetadata("x-labelloop-refused-by", "gateway");
      log::ScopedRequestId scope(request_id_);
      spdlog::info("{} refused: {} {}", route_->policy.method,
                   static_cast<int>(status.error_code()), status.error_message());
      FinishCaller(status);
      return;
    }
    StartUpstream(bytes);
  }

  // Runs `work` (which may wait on I/O) on the blocking pool, then `tag` on this call's
  // queue. Meanwhile only `work` touches the blocking_* fields and admission_.
  void Offload(std::function<void()> work, Tag* tag) {
    ++pending_;
    pool_.Post([this, work = std::move(work), tag] {
      {
        log::ScopedRequestId scope(request_id_);
        try {
          work();
        } catch (const std::exception& e) {
          spdlog::error("{}: gateway step failed: {}", route_->policy.method, e.what());
          blocking_status_ =
              grpc::Status(grpc::StatusCode::INTERNAL, "the gateway failed to proxy this call");
        }
      }
      alarm_.Set(cq_, gpr_now(GPR_CLOCK_MONOTONIC), AsTag(tag));
    });
  }

  void OnWrite(bool ok) {
    caller_write_pending_ = false;
    if (!ok) {
      // The caller went away: stop the upstream, keep reading it to its end.
      caller_gone_ = true;
      if (upstream_live_) upstream_ctx_.TryCancel();
    }
    if (upstream_live_) {
      ReadUpstream();
    } else if (pending_status_) {
      FinishCaller(*pending_status_);  // after Abort
    }
  }

  void OnFinish(bool /*ok*/) {}

  void OnDone(bool /*ok*/) {
    if (ctx_.IsCancelled()) {
      caller_gone_ = true;
      if (upstream_live_) upstream_ctx_.TryCancel();
    }
  }

  void ReadCaller() {
    ++pending_;
    stream_.Read(&in_, AsTag(&read_tag_));
  }

  void FinishCaller(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Count(status.error_code());
    ++pending_;
    stream_.Finish(status, AsTag(&finish_tag_));
  }

  // The server's metrics interceptor is off for the proxied methods (see main.cpp):
  // the same metrics, counted here.
  void Count(grpc::StatusCode code) {
    if (registry_ == nullptr || route_ == nullptr) return;
    grpc_server::RecordCall(
        *registry_, route_->policy.method, code,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  }

  // --- the upstream side ---

  void StartUpstream(const std::string& bytes) {
    upstream_live_ = true;
    gate_.PrepareContext(&upstream_ctx_, *route_, admission_, ctx_.deadline());
    Backend& backend = *route_->backend;
    out_req_ = ToBuffer(bytes);
    if (!route_->client_streaming && !route_->server_streaming) {
      unary_ = backend.stub->PrepareUnaryCall(&upstream_ctx_, route_->policy.method, out_req_, cq_);
      unary_->StartCall();
      ++pending_;
      unary_->Finish(&in_resp_, &upstream_status_, AsTag(&unary_tag_));
      return;
    }
    // Metadata goes out with the first message (StartCall's tag then never comes back).
    upstream_ctx_.set_initial_metadata_corked(true);
    upstream_ = backend.stub->PrepareCall(&upstream_ctx_, route_->policy.method, cq_);
    upstream_->StartCall(nullptr);
    grpc::WriteOptions options;
    if (!route_->client_streaming) {
      // Message and half-close in one go; the caller's half-close is not waited for.
      options.set_last_message();
      upstream_writes_done_ = true;
    }
    ++pending_;
    upstream_->Write(out_req_, options, AsTag(&upstream_write_tag_));
    ReadUpstream();
  }

  void OnUnary(bool /*ok*/) {
    upstream_live_ = false;
    grpc::Status status = gate_.MapBackendStatus(*route_->backend, upstream_status_);
    if (status.ok() && route_->policy.hook != ResponseHook::kNone) {
      if (gate_.AfterResponseMayBlock(*route_, admission_)) {
        blocking_bytes_ = ToString(in_resp_);
        Offload(
            [this] {
              blocking_status_ = gate_.AfterResponse(*route_, admission_, &blocking_bytes_);
            },
            &answered_tag_);
        return;
      }
      log::ScopedRequestId scope(request_id_);
      std::string bytes = ToString(in_resp_);
      status = gate_.AfterResponse(*route_, admission_, &bytes);
      if (status.ok()) in_resp_ = ToBuffer(bytes);
    }
    Reply(status);
  }

  void OnAnswered(bool /*ok*/) {
    if (blocking_status_.ok()) in_resp_ = ToBuffer(blocking_bytes_);
    Reply(blocking_status_);
  }

  // The end of a unary call: the answer in in_resp_ when `status` is OK.
  void Reply(const grpc::Status& status) {
    if (finished_) return;
    if (!status.ok() || caller_gone_) {
      FinishCaller(status);
      return;
    }
    finished_ = true;
    Count(status.error_code());
    ++pending_;
    stream_.WriteAndFinish(in_resp_, grpc::WriteOptions(), status, AsTag(&finish_tag_));
  }

  void OnUpstreamWrite(bool ok) {
    // A failed write: the upstream call is over, its status comes through the read side.
    if (!ok || !route_->client_streaming || upstream_writes_done_) return;
    if (caller_read_done_ || finished_ || pending_status_ || caller_gone_) return;
    ReadCaller();
  }

  void OnUpstreamWritesDone(bool /*ok*/) {}

  void ReadUpstream() {
    ++pending_;
    upstream_->Read(&in_resp_, AsTag(&upstream_read_tag_));
  }

  void OnUpstreamRead(bool ok) {
    if (!ok) {
      ++pending_;
      upstream_->Finish(&upstream_status_, AsTag(&upstream_finish_tag_));
      return;
    }
    if (caller_gone_ || pending_status_ || finished_) {
      ReadUpstream();  // drain to the end
      return;
    }
    if (route_->policy.hook != ResponseHook::kNone) {
      log::ScopedRequestId scope(request_id_);
      std::string bytes = ToString(in_resp_);
      grpc::Status status = gate_.AfterResponse(*route_, admission_, &bytes);
      if (!status.ok()) {
        Fail(status);
        ReadUpstream();
        return;
      }
      out_resp_ = ToBuffer(bytes);
    } else {
      out_resp_.Swap(&in_resp_);
    }
    caller_write_pending_ = true;
    ++pending_;
    stream_.Write(out_resp_, AsTag(&write_tag_));
  }

  void OnUpstreamFinish(bool /*ok*/) {
    upstream_live_ = false;
    FinishCaller(pending_status_ ? *pending_status_
                                 : gate_.MapBackendStatus(*route_->backend, upstream_status_));
  }

  // The gateway ends the call with `status`: cancels the upstream, whose end then
  // finishes the caller's call with it.
  void Fail(const grpc::Status& status) {
    if (!pending_status_) pending_status_ = status;
    if (upstream_live_) {
      upstream_ctx_.TryCancel();
    } else {
      FinishCaller(status);
    }
  }

  // After an unexpected exception: ends both sides as far as they are still open.
  void Abort() {
    if (!pending_status_) {
      pending_status_ =
          grpc::Status(grpc::StatusCode::INTERNAL, "the gateway failed to proxy this call");
    }
    if (upstream_live_) {
      upstream_ctx_.TryCancel();  // its end finishes the caller's call
    } else if (!caller_write_pending_) {
      FinishCaller(*pending_status_);
    }
  }

  Gate& gate_;
  grpc::AsyncGenericService& service_;
  grpc::ServerCompletionQueue* cq_;
  BlockingPool& pool_;
  metrics::Registry* registry_;
  std::chrono::steady_clock::time_point started_;
  // Held while one of the call's events is handled: the queue's threads may take two
  // events of one call at once (say, the upstream answer and the caller's cancellation).
  // Nothing else waits on it, so it is taken without contention but for such races.
  std::mutex mu_;
  int pending_ = 0;

  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_;
  const Route* route_ = nullptr;
  std::string request_id_;
  Admission admission_;

  grpc::ClientContext upstream_ctx_;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> unary_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> upstream_;
  grpc::Status upstream_status_;

  grpc::ByteBuffer in_;        // from the caller
  grpc::ByteBuffer out_req_;   // to the backend
  grpc::ByteBuffer in_resp_;   // from the backend
  grpc::ByteBuffer out_resp_;  // to the caller

  bool upstream_started_ = false;
  bool upstream_live_ = false;  // started and its status not yet received
  bool upstream_writes_done_ = false;
  bool caller_read_done_ = false;
  bool caller_write_pending_ = false;
  bool caller_gone_ = false;
  bool finished_ = false;  // Finish (or WriteAndFinish) issued on the caller's side
  std::optional<grpc::Status> pending_status_;  // the gateway's own verdict, once it has one

  // Work done on the blocking pool, and the alarm that brings the call back.
  grpc::Alarm alarm_;
  std::string blocking_bytes_;
  grpc::Status blocking_status_;
  int64_t blocking_retry_after_ = 0;

  Tag requested_tag_{this, &ProxyCall::OnRequested};
  Tag read_tag_{this, &ProxyCall::OnRead};
  Tag write_tag_{this, &ProxyCall::OnWrite};
  Tag finish_tag_{this, &ProxyCall::OnFinish};
  Tag done_tag_{this, &ProxyCall::OnDone};
  Tag unary_tag_{this, &ProxyCall::OnUnary};
  Tag upstream_write_tag_{this, &ProxyCall::OnUpstreamWrite};
  Tag upstream_writes_done_tag_{this, &ProxyCall::OnUpstreamWritesDone};
  Tag upstream_read_tag_{this, &ProxyCall::OnUpstreamRead};
  Tag upstream_finish_tag_{this, &ProxyCall::OnUpstreamFinish};
  Tag admitted_tag_{this, &ProxyCall::OnAdmitted};
  Tag answered_tag_{this, &ProxyCall::OnAnswered};
};

void Tag::Complete(bool ok) { ProxyCall::Handle(this, ok); }

}  // namespace

Credentials CredentialsOf(const grpc::ServerContextBase& ctx) {
  return {Meta(ctx, "authorization"), Meta(ctx, "x-api-key")};
}

ProxyService::ProxyService(Gate& gate, metrics::Registry* registry, int queues, int threads,
                           int blocking_threads)
    : gate_(gate),
      registry_(registry),
      queues_count_(std::max(1, queues)),
      threads_(std::max(queues_count_, threads)),
      pool_(std::make_unique<BlockingPool>(std::max(1, blocking_threads))) {}

ProxyService::~ProxyService() { Stop(); }

void ProxyService::AddQueues(grpc::ServerBuilder& builder) {
  builder.RegisterAsyncGenericService(&service_);
  for (int i = 0; i < queues_count_; ++i) queues_.push_back(builder.AddCompletionQueue());
}

void ProxyService::Start() {
  for (int i = 0; i < threads_; ++i) {
    pollers_.emplace_back([this, i] { Poll(static_cast<size_t>(i) % queues_.size()); });
  }
  if (on_start_) on_start_();
}

grpc::CompletionQueue* ProxyService::queue() const {
  return queues_.empty() ? nullptr : queues_.front().get();
}

void ProxyService::Poll(size_t index) {
  grpc::ServerCompletionQueue* cq = queues_[index].get();
  for (int i = 0; i < kListening; ++i)
    (new ProxyCall(gate_, service_, cq, *pool_, registry_))->Listen();
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Complete(ok);
}

void ProxyService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // The server has shut down: the callers' sides are over and the listening calls came
  // back failed, but a call whose caller was cancelled may still be ending its upstream
  // side (the cancelled read comes back, then its Finish is started): starting that on a
  // queue already shut down aborts the process. Wait for them while the threads poll.
  if (!pollers_.empty()) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (g_live_calls.load() > 0 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (g_live_calls.load() > 0) {
      spdlog::warn("proxy stop: {} call(s) still ending their upstream side", g_live_calls.load());
    }
  }
  pool_.reset();
  for (auto& q : queues_) q->Shutdown();
  for (auto& t : pollers_) t.join();
  if (pollers_.empty()) {
    // Never started: drain the queues here.
    void* tag = nullptr;
    bool ok = false;
    for (auto& q : queues_) {
      while (q->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Complete(ok);
    }
  }
}

}  // namespace labelloop::gateway
