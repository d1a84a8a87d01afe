// Read side of the labeling service: project statistics, the paginated item listing
// and single items with their payload and labels.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/labeling/domain/agreement.hpp"
#include "services/labeling/domain/outcome.hpp"

namespace labelloop::labeling::storage {

struct AnnotatorRow {
  std::string annotator;
  int64_t labels = 0;
  double median_seconds = 0;
};

struct StatsRecord {
  int64_t total = 0;
  int64_t labeled = 0;
  int64_t under_lease = 0;
  int64_t ties = 0;
  int64_t labels_last_hour = 0;
  std::vector<std::pair<std::string, int64_t>> per_class;
  std::vector<AnnotatorRow> per_annotator;
  std::vector<PairKappa> pairs;
  std::optional<double> fleiss_kappa;
};

struct LabelRow {
  std::string annotator;
  std::vector<std::string> classes;
  double seconds_spent = 0;
  int64_t created_at_us = 0;
  int64_t updated_at_us = 0;
};

struct ItemRecord {
  int64_t id = 0;
  int64_t project_id = 0;
  std::string external_id;
  std::optional<int64_t> sample_ts_us;
  std::string status;
  int judgements = 0;
  std::vector<std::string> consensus;
  bool consensus_tie = false;
  int64_t created_at_us = 0;
  // Payload and labels: GetItem only.
  std::string text;
  std::string row_json;
  std::string image;
  std::string image_format;
  std::vector<LabelRow> labels;
};

struct ItemFilter {
  int64_t project_id = 0;
  std::string status;      // "" = any
  std::string class_name;  // "" = any
  std::string annotator;   // "" = any
  std::optional<int64_t> from_us;
  std::optional<int64_t> to_us;
  bool sample_time = false;  // the range applies to sample_ts instead of created_at
};

class QueryStore {
 public:
  explicit QueryStore(pg::Pool& pool) : pool_(pool) {}

  Outcome<StatsRecord> Stats(int64_t project_id);
  // Items with id > after_id matching the filter, in id order (keyset pagination).
  Outcome<std::vector<ItemRecord>> ListItems(const ItemFilter& filter, int64_t after_id, int limit);
  // The items with payload (labels only when with_labels), in the order of `ids`.
  Outcome<std::vector<ItemRecord>> GetItems(const std::vector<int64_t>& ids, bool with_labels);

 private:
  pg::Pool& pool_;
};

}  // namespace labelloop::labeling::storage
