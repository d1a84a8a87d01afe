#include "services/gateway/proxy.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>

#include "common/grpc_server/request_context.hpp"
#include "common/log/log.hpp"
#include "services/gateway/proto_util.hpp"

namespace labelloop::gateway {
namespace {

std::string Meta(const grpc::ServerContextBase& ctx, const char* key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// One proxied call: the server-side reactor (caller ↔ gateway) owns an upstream
// client-side reactor (gateway ↔ backend). Every upstream operation is started under
// mu_ while upstream_open_ holds; the upstream's hold is dropped once its read side
// ends, after which it finishes and reports its status, which finishes the caller's
// call. The object deletes itself when both sides are done.
class ProxyCall final : public grpc::ServerGenericBidiReactor {
 public:
  ProxyCall(Gate& gate, grpc::GenericCallbackServerContext* ctx)
      : gate_(gate), ctx_(ctx), upstream_(this) {
    request_id_ = Meta(*ctx, grpc_server::kRequestIdHeader);
    if (request_id_.empty() || request_id_.size() > 128) request_id_ = grpc_server::NewRequestId();
    admission_.request_id = request_id_;
    ctx_->AddInitialMetadata("x-request-id", request_id_);
    route_ = gate_.Find(ctx->method());
    if (route_ == nullptr) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          "method " + ctx->method() + " is not part of the public API"));
      return;
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    log::ScopedRequestId scope(request_id_);
    std::unique_lock<std::recursive_mutex> lock(mu_);
    if (!ok) {
      // The caller half-closed (or went away).
      if (!upstream_started_) {
        FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      } else if (upstream_open_ && !writes_done_) {
        writes_done_ = true;
        upstream_.StartWritesDone();
      }
      return;
    }
    std::string bytes = ToString(in_);
    if (!upstream_started_) {
      lock.unlock();
      int64_t retry_after = 0;
      grpc::Status status =
          gate_.Admit(*route_, CredentialsOf(*ctx_), &bytes, &admission_, &retry_after);
      lock.lock();
      if (!status.ok()) {
        if (retry_after > 0) ctx_->AddTrailingMetadata("retry-after", std::to_string(retry_after));
        // Tells tests (and operators) the refusal came from the gateway's policy, not from
        // the service; it reveals nothing the status does not.
        ctx_->AddTrailingMetadata("x-labelloop-refused-by", "gateway");
        spdlog::info("{} refused: {} {}", route_->policy.method,
                     static_cast<int>(status.error_code()), status.error_message());
        FinishLocked(status);
        return;
      }
      if (route_->client_streaming || route_->server_streaming) {
        StartUpstreamLocked(bytes);
      } else {
        StartUnaryLocked(bytes);
      }
      return;
    }
    // A later message of a client stream.
    grpc::Status status = gate_.CheckNext(*route_, admission_, bytes);
    if (!status.ok()) {
      if (upstream_open_) ctx_upstream_.TryCancel();
      pending_status_ = status;
      return;
    }
    if (!upstream_open_) return;
    out_req_ = ToBuffer(bytes);
    upstream_.StartWrite(&out_req_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    server_write_pending_ = false;
    if (!ok) {
      if (upstream_open_) ctx_upstream_.TryCancel();
    } else if (upstream_open_) {
      upstream_.StartRead(&in_resp_);
    }
    if (upstream_status_) FinishLocked(*upstream_status_);
  }

  void OnCancel() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (upstream_started_) ctx_upstream_.TryCancel();
  }

  void OnDone() override { Release(); }

 private:
  class Upstream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit Upstream(ProxyCall* call) : call_(call) {}
    void OnWriteDone(bool ok) override { call_->UpstreamWriteDone(ok); }
    void OnReadDone(bool ok) override { call_->UpstreamReadDone(ok); }
    void OnWritesDoneDone(bool /*ok*/) override {}
    void OnDone(const grpc::Status& s) override { call_->UpstreamDone(s); }

   private:
    ProxyCall* call_;
  };

  void StartUpstreamLocked(const std::string& bytes) {
    upstream_started_ = true;
    upstream_open_ = true;
    refs_.fetch_add(1);
    gate_.PrepareContext(&ctx_upstream_, *route_, admission_, ctx_->deadline());
    route_->backend->stub->PrepareBidiStreamingCall(&ctx_upstream_, route_->policy.method,
                                                    grpc::StubOptions(), &upstream_);
    upstream_.AddHold();
    out_req_ = ToBuffer(bytes);
    if (route_->client_streaming) {
      upstream_.StartWrite(&out_req_);
    } else {
      // Message and half-close in one go; the caller's half-close is not waited for.
      writes_done_ = true;
      upstream_.StartWriteLast(&out_req_, grpc::WriteOptions());
    }
    upstream_.StartRead(&in_resp_);
    upstream_.StartCall();
  }

  // A unary method: one generic unary call upstream and one write-and-finish back, so a
  // call costs three reactions (request read, upstream answer, done) instead of the
  // stream path's nine — each reaction is a hand-off to a gRPC executor thread.
  void StartUnaryLocked(const std::string& bytes) {
    upstream_started_ = true;
    refs_.fetch_add(1);
    gate_.PrepareContext(&ctx_upstream_, *route_, admission_, ctx_->deadline());
    out_req_ = ToBuffer(bytes);
    route_->backend->stub->UnaryCall(&ctx_upstream_, route_->policy.method, grpc::StubOptions(),
                                     &out_req_, &in_resp_,
                                     [this](grpc::Status status) { UnaryDone(status); });
  }

  void UnaryDone(const grpc::Status& upstream) {
    {
      log::ScopedRequestId scope(request_id_);
      std::lock_guard<std::recursive_mutex> lock(mu_);
      grpc::Status status = gate_.MapBackendStatus(*route_->backend, upstream);
      if (status.ok() && route_->policy.hook != ResponseHook::kNone) {
        std::string bytes = ToString(in_resp_);
        status = gate_.AfterResponse(*route_, admission_, &bytes);
        if (status.ok()) in_resp_ = ToBuffer(bytes);
      }
      if (!finished_) {
        finished_ = true;
        if (status.ok()) {
          StartWriteAndFinish(&in_resp_, grpc::WriteOptions(), status);
        } else {
          Finish(status);
        }
      }
    }
    Release();
  }

  void UpstreamWriteDone(bool ok) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (ok && route_->client_streaming && !writes_done_ && !finished_) StartRead(&in_);
  }

  void UpstreamReadDone(bool ok) {
    log::ScopedRequestId scope(request_id_);
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (!ok) {
      upstream_open_ = false;
      upstream_.RemoveHold();
      return;
    }
    std::string bytes;
    const bool hooked = route_->policy.hook != ResponseHook::kNone;
    if (hooked) {
      bytes = ToString(in_resp_);
      grpc::Status status = gate_.AfterResponse(*route_, admission_, &bytes);
      if (!status.ok()) {
        pending_status_ = status;
        ctx_upstream_.TryCancel();
        upstream_.StartRead(&in_resp_);
        return;
      }
    }
    if (finished_) return;
    out_resp_ = hooked ? ToBuffer(bytes) : in_resp_;
    server_write_pending_ = true;
    StartWrite(&out_resp_);
  }

  void UpstreamDone(const grpc::Status& status) {
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      upstream_status_ =
          pending_status_ ? *pending_status_ : gate_.MapBackendStatus(*route_->backend, status);
      if (!server_write_pending_) FinishLocked(*upstream_status_);
    }
    Release();
  }

  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  void Release() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  Gate& gate_;
  grpc::GenericCallbackServerContext* ctx_;
  const Route* route_ = nullptr;
  std::string request_id_;
  Admission admission_;
  grpc::ClientContext ctx_upstream_;
  Upstream upstream_;
  // Recursive: a Start* call on one side may run the other side's reaction inline.
  std::recursive_mutex mu_;
  std::atomic<int> refs_{1};
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_req_;
  grpc::ByteBuffer in_resp_;
  grpc::ByteBuffer out_resp_;
  bool upstream_started_ = false;
  bool upstream_open_ = false;
  bool writes_done_ = false;
  bool server_write_pending_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> upstream_status_;
  std::optional<grpc::Status> pending_status_;
};

}  // namespace

Credentials CredentialsOf(const grpc::ServerContextBase& ctx) {
  return {Meta(ctx, "authorization"), Meta(ctx, "x-api-key")};
}

grpc::ServerGenericBidiReactor* ProxyService::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  return new ProxyCall(gate_, ctx);
}

}  // namespace labelloop::gateway
