// Fixture for the ingestion integration tests: a fresh database with the labeling
// migrations, a pool, helpers to create projects, upload in chunks and query.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/pg/pool.hpp"
#include "common/testing/testing.hpp"
#include "services/labeling/ingest/ingestor.hpp"

namespace labelloop::labeling::ingest::test {

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  int64_t CreateProject(const std::string& data_kind, const std::string& classes = "{cat,dog}",
                        const std::string& label_kind = "single", int judgements = 1,
                        const std::string& validators = "{}");
  Ingestor& ingestor();
  // Feeds data in chunks of `chunk` bytes, then finishes.
  Status Upload(const UploadSpec& spec, const std::string& data, size_t chunk,
                UploadResult* result);
  Status UploadCsv(int64_t project, const std::string& data, UploadResult* result,
                   Mode mode = Mode::kCommitGoodRows, size_t chunk = 1 << 20);
  // The first column of the first row as text ("" for NULL / no row).
  std::string Scalar(const std::string& sql);
  int64_t Count(const std::string& sql) { return std::stoll(Scalar(sql)); }

  IngestOptions options_;
  std::unique_ptr<testing::TempDatabase> db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<Ingestor> ingestor_;
};

UploadSpec Spec(int64_t project, Format format, ColumnMapping mapping = {},
                Mode mode = Mode::kCommitGoodRows);

// The mapping of the tabular test CSVs: id, ts, f1..f3, optional label.
ColumnMapping TabularMapping(bool with_label = false);

}  // namespace labelloop::labeling::ingest::test
