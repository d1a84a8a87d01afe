// ClaimNext and SubmitLabel on gRPC's completion-queue API. A few threads poll one
// completion queue; each new call is handed to LabelingServiceImpl::Answer*, which queues
// it into a claim or submit batch and returns, so no thread sits blocked per call (the
// synchronous server kept one blocked thread per concurrent call, and every call paid the
// thread switches of handing it over and waking it). The thread that runs a batch answers
// every call in it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/grpc_server/server.hpp"
#include "services/labeling/service.hpp"

namespace labelloop::labeling {

class AsyncCalls final : public grpc_server::AsyncMethods {
 public:
  // `threads` poll the queue; a thread running a batch is busy until the batch ends, so
  // there should be more threads than claim-batches + submit-batches.
  // Calls are counted in `registry` by the calls themselves (grpc_server::RecordCall): a
  // server interceptor costs a completion-queue call tens of microseconds; give
  // RecordsOwnMetrics to Runtime::SetRecordsOwnMetrics so the server adds none.
  AsyncCalls(LabelingServiceImpl& service, int threads, metrics::Registry* registry);
  static bool RecordsOwnMetrics(const std::string& method);
  ~AsyncCalls() override;
  AsyncCalls(const AsyncCalls&) = delete;
  AsyncCalls& operator=(const AsyncCalls&) = delete;

  void AddQueues(grpc::ServerBuilder& builder) override;
  void Start() override;
  void Stop() override;

 private:
  template <typename Request, typename Reply>
  using RequestFn = std::function<void(grpc::ServerContext*, Request*,
                                       grpc::ServerAsyncResponseWriter<Reply>*, void*)>;
  template <typename Request, typename Reply>
  using AnswerFn = std::function<void(grpc::ServerContext*, const Request*, Reply*,
                                      LabelingServiceImpl::Finish)>;

  static const std::string kClaimNext;
  static const std::string kSubmitLabel;

  LabelingServiceImpl& service_;
  int threads_;
  metrics::Registry* registry_;
  // What every call uses to request its successor and to be answered (calls hold
  // references to these; they end before Stop returns).
  RequestFn<v1::ClaimNextRequest, v1::ClaimNextResponse> request_claim_;
  AnswerFn<v1::ClaimNextRequest, v1::ClaimNextResponse> answer_claim_;
  RequestFn<v1::SubmitLabelRequest, v1::SubmitLabelResponse> request_submit_;
  AnswerFn<v1::SubmitLabelRequest, v1::SubmitLabelResponse> answer_submit_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::vector<std::thread> pollers_;
};

}  // namespace labelloop::labeling
