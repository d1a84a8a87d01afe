#include "services/labeling/async_calls.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <string>

namespace labelloop::labeling {
namespace {

// A completion-queue tag: something that goes on when its operation completes.
class Tag {
 public:
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

// One unary call: requested, then answered, then deleted once the answer is sent. Each
// new call first requests the next one, so one call of each method is always waiting.
template <typename Request, typename Reply>
class UnaryCall final : public Tag {
 public:
  using Writer = grpc::ServerAsyncResponseWriter<Reply>;
  using RequestFn = std::function<void(grpc::ServerContext*, Request*, Writer*, void*)>;
  using AnswerFn = std::function<void(grpc::ServerContext*, const Request*, Reply*,
                                      LabelingServiceImpl::Finish)>;

  UnaryCall(const RequestFn& request, const AnswerFn& answer, const std::string& method,
            metrics::Registry* registry)
      : request_(request),
        answer_(answer),
        method_(method),
        registry_(registry),
        writer_(&context_) {
    request_(&context_, &req_, &writer_, this);
  }

  void Proceed(bool ok) override {
    // The answer went out (or the caller is gone); or no call came: the server shuts down.
    if (answered_ || !ok) {
      delete this;
      return;
    }
    new UnaryCall(request_, answer_, method_, registry_);
    answered_ = true;
    const auto start = std::chrono::steady_clock::now();
    answer_(&context_, &req_, &reply_, [this, start](grpc::Status status) {
      // Counted here, not by the server's metrics interceptor (see AsyncCalls).
      if (registry_ != nullptr) {
        grpc_server::RecordCall(
            *registry_, method_, status.error_code(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      if (status.ok()) {
        writer_.Finish(reply_, status, this);
      } else {
        writer_.FinishWithError(status, this);
      }
    });
  }

 private:
  const RequestFn& request_;
  const AnswerFn& answer_;
  const std::string& method_;
  metrics::Registry* registry_;
  grpc::ServerContext context_;
  Request req_;
  Reply reply_;
  Writer writer_;
  bool answered_ = false;
};

using ClaimCall = UnaryCall<v1::ClaimNextRequest, v1::ClaimNextResponse>;
using SubmitCall = UnaryCall<v1::SubmitLabelRequest, v1::SubmitLabelResponse>;

}  // namespace

const std::string AsyncCalls::kClaimNext = "/labelloop.v1.LabelingService/ClaimNext";
const std::string AsyncCalls::kSubmitLabel = "/labelloop.v1.LabelingService/SubmitLabel";

bool AsyncCalls::RecordsOwnMetrics(const std::string& method) {
  return method == kClaimNext || method == kSubmitLabel;
}

AsyncCalls::AsyncCalls(LabelingServiceImpl& service, int threads, metrics::Registry* registry)
    : service_(service), threads_(std::max(1, threads)), registry_(registry) {}

AsyncCalls::~AsyncCalls() { Stop(); }

void AsyncCalls::AddQueues(grpc::ServerBuilder& builder) { cq_ = builder.AddCompletionQueue(); }

void AsyncCalls::Start() {
  auto* cq = cq_.get();
  auto& svc = service_;
  request_claim_ = [&svc, cq](grpc::ServerContext* c, v1::ClaimNextRequest* r, ClaimCall::Writer* w,
                              void* tag) { svc.RequestClaimNext(c, r, w, cq, cq, tag); };
  answer_claim_ = [&svc](grpc::ServerContext* c, const v1::ClaimNextRequest* r,
                         v1::ClaimNextResponse* reply, LabelingServiceImpl::Finish finish) {
    svc.AnswerClaimNext(c, r, reply, std::move(finish));
  };
  request_submit_ = [&svc, cq](grpc::ServerContext* c, v1::SubmitLabelRequest* r,
                               SubmitCall::Writer* w,
                               void* tag) { svc.RequestSubmitLabel(c, r, w, cq, cq, tag); };
  answer_submit_ = [&svc](grpc::ServerContext* c, const v1::SubmitLabelRequest* r,
                          v1::SubmitLabelResponse* reply, LabelingServiceImpl::Finish finish) {
    svc.AnswerSubmitLabel(c, r, reply, std::move(finish));
  };
  // One waiting call per thread and method, so calls arriving together are taken at once.
  for (int i = 0; i < threads_; ++i) {
    new ClaimCall(request_claim_, answer_claim_, kClaimNext, registry_);
    new SubmitCall(request_submit_, answer_submit_, kSubmitLabel, registry_);
  }
  for (int i = 0; i < threads_; ++i) {
    pollers_.emplace_back([this] {
      void* tag = nullptr;
      bool ok = false;
      while (cq_->Next(&tag, &ok)) {
        try {
          static_cast<Tag*>(tag)->Proceed(ok);
        } catch (const std::exception& e) {
          spdlog::error("ClaimNext/SubmitLabel: unexpected error: {}", e.what());
        }
      }
    });
  }
}

void AsyncCalls::Stop() {
  if (!cq_) return;
  // The server has shut down: no call is waiting or running; the queue drains.
  cq_->Shutdown();
  for (auto& t : pollers_) t.join();
  if (pollers_.empty()) {  // never started: drain here
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) delete static_cast<Tag*>(tag);
  }
  pollers_.clear();
  cq_.reset();
}

}  // namespace labelloop::labeling
