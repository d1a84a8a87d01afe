// Ingestion through the real labelloop-labeling binary: a project created over gRPC,
// streamed uploads (CSV, zip), the same file twice, rejects in both modes, single-item
// push with validators, the ingest-* settings taking effect, and the items handed out
// by ClaimNext afterwards.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "common/testing/testing.hpp"
#include "labelloop/v1/labeling.grpc.pb.h"
#include "labelloop/v1/labeling_ingest.grpc.pb.h"
#include "services/labeling/ingest/test/images.hpp"
#include "services/labeling/ingest/test/zip_maker.hpp"

namespace labelloop {
namespace {

using std::chrono::seconds;

class LabelingIngestE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::AdminPgUrl();
    auto redis = testing::TestRedis();
    if (!url || !redis) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)";
    db_ = std::make_unique<testing::TempDatabase>(*url);
    service_ = std::make_unique<testing::ServiceUnderTest>(
        "labelloop-labeling", db_->url(), *redis, std::vector<std::string>{},
        std::map<std::string, std::string>{{"LABELLOOP_RANKING_ADDR", ""},
                                           {"LABELLOOP_INGEST_ZIP_MAX_RATIO", "20"},
                                           {"LABELLOOP_INGEST_TEXT_FEATURE_DIM", "128"}});
    ASSERT_TRUE(service_->WaitServing(seconds(30))) << service_->Log();
    projects_ = v1::LabelingService::NewStub(service_->Channel());
    ingest_ = v1::LabelingIngestService::NewStub(service_->Channel());
  }

  int64_t CreateProject(const std::string& kind, const std::string& validators = "") {
    grpc::ClientContext ctx;
    v1::CreateProjectRequest req;
    req.set_name("ingest e2e");
    req.set_data_kind(kind);
    req.mutable_schema()->set_kind("single");
    req.mutable_schema()->add_classes("cat");
    req.mutable_schema()->add_classes("dog");
    req.set_validators_json(validators);
    v1::Project p;
    const auto st = projects_->CreateProject(&ctx, req, &p);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return p.id();
  }

  grpc::Status Upload(const v1::UploadHeader& header, const std::string& data, size_t chunk,
                      v1::UploadResponse* resp) {
    grpc::ClientContext ctx;
    auto writer = ingest_->Upload(&ctx, resp);
    v1::UploadRequest req;
    *req.mutable_header() = header;
    writer->Write(req);
    for (size_t i = 0; i < data.size(); i += chunk) {
      v1::UploadRequest c;
      c.set_chunk(data.substr(i, chunk));
      if (!writer->Write(c)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  static v1::UploadHeader CsvHeader(int64_t project, v1::UploadMode mode) {
    v1::UploadHeader h;
    h.set_project_id(project);
    h.set_format(v1::UPLOAD_FORMAT_CSV);
    h.set_mode(mode);
    h.set_file_name("data.csv");
    auto* m = h.mutable_mapping();
    m->set_external_id_column("id");
    m->set_sample_ts_column("ts");
    m->set_label_column("label");
    m->add_feature_columns("x");
    m->add_feature_columns("y");
    return h;
  }

  std::unique_ptr<testing::TempDatabase> db_;
  std::unique_ptr<testing::ServiceUnderTest> service_;
  std::unique_ptr<v1::LabelingService::Stub> projects_;
  std::unique_ptr<v1::LabelingIngestService::Stub> ingest_;
};

TEST_F(LabelingIngestE2E, CsvUploadTwiceThenClaim) {
  const int64_t p = CreateProject("tabular");
  std::string csv = "id,ts,x,y,label\n";
  for (int i = 0; i < 500; ++i) {
    csv += "r" + std::to_string(i) + ",2024-01-01T00:00:00Z," + std::to_string(i) + ",\"" +
           std::to_string(-i) + "\"," + (i < 100 ? "cat" : "") + "\n";
  }
  v1::UploadResponse resp;
  auto st = Upload(CsvHeader(p, v1::UPLOAD_MODE_ALL_OR_NOTHING), csv, 333, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.rows_read(), 500);
  EXPECT_EQ(resp.items_inserted(), 500);
  EXPECT_EQ(resp.labels_imported(), 100);
  EXPECT_EQ(resp.feature_dim(), 2);
  st = Upload(CsvHeader(p, v1::UPLOAD_MODE_ALL_OR_NOTHING), csv, 1 << 20, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.items_inserted(), 0);
  EXPECT_EQ(resp.duplicates(), 500);

  grpc::ClientContext gctx;
  v1::GetProjectRequest greq;
  greq.set_project_id(p);
  v1::Project project;
  ASSERT_TRUE(projects_->GetProject(&gctx, greq, &project).ok());
  EXPECT_EQ(project.feature_dim(), 2);

  // The first unlabeled item in file order is handed out, with its payload.
  grpc::ClientContext cctx;
  v1::ClaimNextRequest creq;
  creq.set_project_id(p);
  creq.set_annotator("alice");
  creq.set_n(1);
  creq.set_with_payload(true);
  v1::ClaimNextResponse claimed;
  st = projects_->ClaimNext(&cctx, creq, &claimed);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(claimed.items_size(), 1);
  EXPECT_EQ(claimed.items(0).item().external_id(), "r100");
  EXPECT_EQ(claimed.items(0).item().sample_ts().seconds(), 1704067200);
}

TEST_F(LabelingIngestE2E, BadRowsInBothModes) {
  const int64_t p = CreateProject("tabular");
  const std::string csv =
      "id,ts,x,y,label\n"
      "a,,1,2,cat\n"
      "b,,1\n"
      "c,,1,oops,\n"
      "d,,1,2,bird\n";
  v1::UploadResponse resp;
  auto st = Upload(CsvHeader(p, v1::UPLOAD_MODE_ALL_OR_NOTHING), csv, 4, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("upload rejected, nothing stored: 3 of 4 rows are invalid: "
                                    "line 3: 3 fields, the header has 5; line 4: column 'y': "
                                    "'oops' is not a finite number; line 5: label 'bird'"),
            std::string::npos)
      << st.error_message();
  st = Upload(CsvHeader(p, v1::UPLOAD_MODE_COMMIT_GOOD_ROWS), csv, 4, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.items_inserted(), 1);
  ASSERT_EQ(resp.rejected_size(), 3);
  EXPECT_EQ(resp.rejected(0).line(), 3);
  EXPECT_EQ(resp.rejected(1).line(), 4);
  EXPECT_EQ(resp.rejected(2).line(), 5);

  v1::UploadHeader no_header_first;
  grpc::ClientContext ctx;
  v1::UploadResponse r2;
  auto writer = ingest_->Upload(&ctx, &r2);
  v1::UploadRequest chunk;
  chunk.set_chunk("id,x\n");
  writer->Write(chunk);
  writer->WritesDone();
  st = writer->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "the first message of an upload must carry the header");
}

TEST_F(LabelingIngestE2E, ZipUploadAndSettingsTakeEffect) {
  const int64_t p = CreateProject("image");
  v1::UploadHeader h;
  h.set_project_id(p);
  h.set_format(v1::UPLOAD_FORMAT_ZIP_IMAGES);
  h.set_mode(v1::UPLOAD_MODE_COMMIT_GOOD_ROWS);
  v1::UploadResponse resp;
  const std::string zip =
      labeling::ingest::test::MakeZip({{"a.png", labeling::ingest::test::Png(32, 32)},
                                       {"b.jpg", labeling::ingest::test::Jpeg(16, 8)},
                                       {"../up.png", labeling::ingest::test::Png(8, 8)},
                                       {"labels.csv", "file,label\na.png,dog\n"}});
  auto st = Upload(h, zip, 1000, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.items_inserted(), 2);
  EXPECT_EQ(resp.labels_imported(), 1);
  EXPECT_EQ(resp.feature_dim(), 16 * 16 + 24);
  ASSERT_EQ(resp.rejected_size(), 1);
  EXPECT_EQ(resp.rejected(0).entry(), "../up.png");
  EXPECT_EQ(resp.rejected(0).reason(), "path with '..' escapes the archive");
  // LABELLOOP_INGEST_ZIP_MAX_RATIO=20: a 1 MiB run of zeros is a bomb here.
  st = Upload(h, labeling::ingest::test::MakeZip({{"zeros.png", std::string(1 << 20, '\0')}}),
              1 << 20, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("entry 'zeros.png': compression ratio"), std::string::npos)
      << st.error_message();
  EXPECT_NE(st.error_message().find("exceeds the limit of 20"), std::string::npos);
}

TEST_F(LabelingIngestE2E, PushWithValidatorsAndInvalidValidatorConfig) {
  {
    grpc::ClientContext ctx;
    v1::CreateProjectRequest req;
    req.set_name("bad validators");
    req.set_data_kind("text");
    req.mutable_schema()->set_kind("single");
    req.mutable_schema()->add_classes("pos");
    req.set_validators_json(R"({"text": {"max_lenght": 5}})");
    v1::Project p;
    const auto st = projects_->CreateProject(&ctx, req, &p);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("unknown key 'max_lenght'"), std::string::npos)
        << st.error_message();
  }
  const int64_t p = CreateProject("text", R"({"text": {"max_length": 40}})");
  auto push = [&](const std::string& id, const std::string& text, v1::PushItemResponse* r) {
    grpc::ClientContext ctx;
    v1::PushItemRequest req;
    req.set_project_id(p);
    req.set_external_id(id);
    req.set_text(text);
    req.add_labels("cat");
    return ingest_->PushItem(&ctx, req, r);
  };
  v1::PushItemResponse r;
  auto st = push("t1", "a short text", &r);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(r.created());
  EXPECT_TRUE(r.labeled());
  EXPECT_EQ(r.feature_dim(), 128);  // LABELLOOP_INGEST_TEXT_FEATURE_DIM
  st = push("t1", "a short text", &r);
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(r.created());
  st = push("t2", std::string(50, 'x'), &r);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "text: text of 50 bytes is longer than max_length 40");
}

}  // namespace
}  // namespace labelloop
