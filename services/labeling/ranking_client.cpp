#include "services/labeling/ranking_client.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/grpc_server/request_context.hpp"

namespace labelloop::labeling {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

RankingClient::RankingClient(const std::string& address, std::chrono::milliseconds deadline,
                             std::chrono::milliseconds retry_after_failure)
    : deadline_(deadline), retry_after_failure_(retry_after_failure) {
  if (!address.empty()) {
    stub_ = v1::RankingService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
}

std::optional<std::vector<int64_t>> RankingClient::NextCandidates(int64_t project_id, int n) {
  if (!stub_ || NowNs() < skip_until_ns_.load(std::memory_order_relaxed)) return std::nullopt;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
  grpc_server::PropagateRequestId(&ctx);
  v1::NextCandidatesRequest req;
  req.set_project_id(project_id);
  req.set_n(n);
  v1::NextCandidatesResponse resp;
  grpc::Status status = stub_->NextCandidates(&ctx, req, &resp);
  if (!status.ok()) {
    skip_until_ns_.store(
        NowNs() +
            std::chrono::duration_cast<std::chrono::nanoseconds>(retry_after_failure_).count(),
        std::memory_order_relaxed);
    spdlog::debug("ranking NextCandidates failed ({}): oldest-first for {} ms",
                  status.error_message(), retry_after_failure_.count());
    return std::nullopt;
  }
  if (!resp.has_order()) return std::nullopt;
  std::vector<int64_t> ids;
  ids.reserve(static_cast<size_t>(resp.candidates_size()));
  for (const auto& c : resp.candidates()) ids.push_back(c.item_id());
  return ids;
}

}  // namespace labelloop::labeling
