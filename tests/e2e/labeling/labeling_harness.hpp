// A labeling service under test: a fresh database, the real binary, a stub, and helpers
// to make projects and insert items straight into labeling.items.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/testing/testing.hpp"
#include "labelloop/v1/labeling.grpc.pb.h"

namespace labelloop::e2e {

class LabelingHarness {
 public:
  // Skips the test (returns false) outside tests/run.
  bool Start(const std::vector<std::string>& extra_args = {});

  v1::LabelingService::Stub& stub() { return *stub_; }
  std::unique_ptr<v1::LabelingService::Stub> NewStub() const;
  std::string db_url() const { return db_->url(); }
  std::pair<std::string, int> redis() const { return redis_; }
  testing::ServiceUnderTest& service() { return *service_; }

  // A project over gRPC (asserts success).
  v1::Project CreateProject(const std::vector<std::string>& classes,
                            const std::string& kind = "single", int judgements = 1,
                            const std::string& name = "p");
  // n text items inserted directly; returns their ids in order.
  std::vector<int64_t> InsertItems(int64_t project_id, int n);
  // One SQL scalar.
  int64_t Count(const std::string& sql);

 private:
  std::unique_ptr<testing::TempDatabase> db_;
  std::pair<std::string, int> redis_;
  std::unique_ptr<testing::ServiceUnderTest> service_;
  std::unique_ptr<v1::LabelingService::Stub> stub_;
};

// After annotators labeled every one of `items` items of the project with class
// (cat, dog, bird)[item_id % 3]: one label per item, each the class its annotator sent,
// the items labeled, the labeled counter right, no live lease left, one history row per
// lease, and no two leases of an item ever overlapping in time.
void ExpectEveryItemLabeledOnce(LabelingHarness& h, int64_t project_id, int items);

// Convenience calls returning the status and filling the reply.
grpc::Status Claim(v1::LabelingService::Stub& stub, int64_t project, const std::string& who, int n,
                   v1::ClaimNextResponse* out);
grpc::Status Submit(v1::LabelingService::Stub& stub, const v1::Lease& lease,
                    const std::vector<std::string>& classes, v1::SubmitLabelResponse* out = nullptr,
                    double seconds = 1.0);

}  // namespace labelloop::e2e
