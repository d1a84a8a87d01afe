// Asks the ranking service for the order in which to hand items out. Never blocks an
// annotator: a short deadline, and after a failure the service is not asked again for
// a while (the claim falls back to oldest-first meanwhile).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "labelloop/v1/ranking.grpc.pb.h"

namespace labelloop::labeling {

class RankingClient {
 public:
  // An empty address disables ranking (always oldest-first).
  RankingClient(const std::string& address, std::chrono::milliseconds deadline,
                std::chrono::milliseconds retry_after_failure);

  // Ranked item ids (best first) for the project, or nullopt when there is no order:
  // ranking disabled, unreachable, failing, or has_order = false.
  std::optional<std::vector<int64_t>> NextCandidates(int64_t project_id, int n);

 private:
  std::unique_ptr<v1::RankingService::Stub> stub_;
  std::chrono::milliseconds deadline_;
  std::chrono::milliseconds retry_after_failure_;
  std::atomic<int64_t> skip_until_ns_{0};
};

}  // namespace labelloop::labeling
