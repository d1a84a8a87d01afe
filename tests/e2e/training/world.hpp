// A test database with labeling's schema (from its migration folder) and helpers that
// insert fixture rows into labeling's tables directly, as the labeling service would.
#pragma once

#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/testing/testing.hpp"

namespace labelloop::training_e2e {

struct Items {
  std::vector<std::vector<float>> features;
  std::vector<std::string> labels;  // "" = unlabeled
};

// n items of dim features around k well-separated class centres (fixed seed); the first
// `labeled` carry their class as consensus label.
Items Blobs(int n, int labeled, int dim, const std::vector<std::string>& classes, uint64_t seed,
            double separation = 4.0);

class World {
 public:
  explicit World(const std::string& admin_url);
  const std::string& url() const { return db_.url(); }

  int64_t CreateProject(const std::string& label_kind, const std::vector<std::string>& classes);
  // Items via COPY; returns their ids in order.
  std::vector<int64_t> AddItems(int64_t project_id, const Items& items);
  pqxx::result Query(const std::string& sql);
  int64_t Count(const std::string& sql);

 private:
  testing::TempDatabase db_;
  std::unique_ptr<pqxx::connection> conn_;
  int next_external_ = 0;
};

}  // namespace labelloop::training_e2e
