#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "services/labeling/ingest/test/ingest_fixture.hpp"

#include "common/migrate/migrate.hpp"
#include "services/labeling/ingest/test/images.hpp"

namespace labelloop::labeling::ingest_test {
std::vector<migrate::Migration> Migrations();
}

namespace labelloop::labeling::ingest::test {

void IngestTest::SetUp() {
  auto url = testing::AdminPgUrl();
  if (!url) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL)";
  db_ = std::make_unique<testing::TempDatabase>(*url);
  pool_ = std::make_unique<pg::Pool>(pg::PoolOptions{.url = db_->url(), .size = 4});
  migrate::Apply(*pool_, "labeling", ingest_test::Migrations());
}

void IngestTest::TearDown() {
  ingestor_.reset();
  pool_.reset();
  db_.reset();
}

Ingestor& IngestTest::ingestor() {
  if (!ingestor_) ingestor_ = std::make_unique<Ingestor>(*pool_, options_);
  return *ingestor_;
}

int64_t IngestTest::CreateProject(const std::string& data_kind, const std::string& classes,
                                  const std::string& label_kind, int judgements,
                                  const std::string& validators) {
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec_params(
        "INSERT INTO labeling.projects (name, data_kind, label_kind, classes, "
        "judgements_per_item, validators) VALUES ('p', $1, $2, $3::text[], $4, $5::jsonb) "
        "RETURNING id",
        data_kind, label_kind, classes, judgements, validators);
    tx.commit();
    return r[0][0].as<int64_t>();
  });
}

Status IngestTest::Upload(const UploadSpec& spec, const std::string& data, size_t chunk,
                          UploadResult* result) {
  std::unique_ptr<UploadSession> session;
  Status st = ingestor().BeginUpload(spec, &session);
  if (!st.ok()) return st;
  for (size_t i = 0; i < data.size(); i += chunk) {
    st = session->Feed(std::string_view(data).substr(i, chunk));
    if (!st.ok()) return st;
  }
  return session->Finish(result);
}

Status IngestTest::UploadCsv(int64_t project, const std::string& data, UploadResult* result,
                             Mode mode, size_t chunk) {
  const UploadSpec spec =
      Spec(project, Format::kCsv, TabularMapping(data.find(",label") != std::string::npos), mode);
  return Upload(spec, data, chunk, result);
}

std::string IngestTest::Scalar(const std::string& sql) {
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    auto r = tx.exec(sql);
    if (r.empty() || r[0][0].is_null()) return std::string();
    return r[0][0].as<std::string>();
  });
}

UploadSpec Spec(int64_t project, Format format, ColumnMapping mapping, Mode mode) {
  UploadSpec spec;
  spec.project_id = project;
  spec.format = format;
  spec.mapping = std::move(mapping);
  spec.mode = mode;
  return spec;
}

ColumnMapping TabularMapping(bool with_label) {
  ColumnMapping m;
  m.external_id = "id";
  m.sample_ts = "ts";
  m.features = {"f1", "f2", "f3"};
  if (with_label) m.label = "label";
  return m;
}

}  // namespace labelloop::labeling::ingest::test
