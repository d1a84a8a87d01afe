// Single-item push: each validator, idempotency, labels, and the gRPC adapter's base64.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "services/labeling/ingest/ingest_service.hpp"
#include "services/labeling/ingest/test/images.hpp"
#include "services/labeling/ingest/test/ingest_fixture.hpp"

namespace labelloop::labeling::ingest::test {
namespace {

PushItem Tabular(int64_t p, const std::string& id, std::vector<float> f) {
  PushItem item;
  item.project_id = p;
  item.external_id = id;
  item.kind = PushItem::Kind::kFeatures;
  item.features = std::move(f);
  return item;
}

TEST_F(IngestTest, PushStoresOnceAndChecksFeatureValidators) {
  const int64_t p = CreateProject("tabular", "{cat,dog}", "single", 1,
                                  R"({"features": {"count": 3, "min": 0, "max": 10}})");
  PushResult r;
  PushItem item = Tabular(p, "a", {1, 2, 3});
  item.sample_ts_micros = 1714566600LL * 1000000;
  item.labels = {"cat"};
  ASSERT_TRUE(ingestor().Push(item, &r).ok());
  EXPECT_TRUE(r.created);
  EXPECT_TRUE(r.labeled);
  EXPECT_EQ(r.feature_dim, 3);
  const int64_t id = r.item_id;
  ASSERT_TRUE(ingestor().Push(item, &r).ok());
  EXPECT_FALSE(r.created);
  EXPECT_EQ(r.item_id, id);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.labels WHERE annotator = 'import'"), 1);
  EXPECT_EQ(Count("SELECT sum(labeled) FROM labeling.label_counts"), 1);
  EXPECT_EQ(Scalar("SELECT status || consensus::text || features::text || "
                   "extract(epoch FROM sample_ts)::bigint FROM labeling.items"),
            "labeled{cat}{1,2,3}1714566600");

  Status st = ingestor().Push(Tabular(p, "b", {1, 2}), &r);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_EQ(st.message, "features: 2 features, the project's validators require 3");
  st = ingestor().Push(Tabular(p, "b", {1, 20, 3}), &r);
  EXPECT_EQ(st.message, "features: feature 1 = 20 is outside [0, 10]");
  PushItem bad_label = Tabular(p, "b", {1, 2, 3});
  bad_label.labels = {"bird"};
  st = ingestor().Push(bad_label, &r);
  EXPECT_EQ(st.message, "labels: label 'bird' is not a class of project " + std::to_string(p) +
                            " (classes: cat, dog)");
  PushItem text = Tabular(p, "b", {});
  text.kind = PushItem::Kind::kText;
  text.text = "hello";
  st = ingestor().Push(text, &r);
  EXPECT_EQ(st.message, "payload: project " + std::to_string(p) +
                            " holds tabular items, this push carries a text");
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 1);
}

TEST_F(IngestTest, PushChecksFeatureDimAgainstTheProject) {
  const int64_t p = CreateProject("tabular");
  PushResult r;
  ASSERT_TRUE(ingestor().Push(Tabular(p, "a", {1, 2, 3}), &r).ok());
  const Status st = ingestor().Push(Tabular(p, "b", {1, 2}), &r);
  EXPECT_EQ(st.code, Code::kFailedPrecondition);
  EXPECT_EQ(st.message, "project " + std::to_string(p) +
                            " has feature_dim 3 (fixed by its first ingestion); this item has 2 "
                            "features");
}

TEST_F(IngestTest, PushChecksLabelFieldsAndRequiredLabels) {
  const int64_t p = CreateProject("text", "{pos,neg}", "single", 1,
                                  R"({"labels": {"required": true}, "text": {"max_length": 20},
          "label_fields": {"confidence": {"type": "number", "required": true, "min": 0, "max": 1}}})");
  PushItem item;
  item.project_id = p;
  item.external_id = "t1";
  item.kind = PushItem::Kind::kText;
  item.text = "nice";
  PushResult r;
  Status st = ingestor().Push(item, &r);
  EXPECT_EQ(st.message, "labels: labels are required by the project's validators");
  item.labels = {"pos"};
  st = ingestor().Push(item, &r);
  EXPECT_EQ(st.message, "label_fields_json: label field 'confidence' is required");
  item.label_fields_json = R"({"confidence": "high"})";
  st = ingestor().Push(item, &r);
  EXPECT_EQ(st.message, "label_fields_json: label field 'confidence' must be a number");
  item.label_fields_json = "[1]";
  st = ingestor().Push(item, &r);
  EXPECT_EQ(st.message, "label_fields_json: must be a JSON object");
  item.text = std::string(30, 'x');
  item.label_fields_json = R"({"confidence": 0.9})";
  st = ingestor().Push(item, &r);
  EXPECT_EQ(st.message, "text: text of 30 bytes is longer than max_length 20");
  item.text = "nice";
  item.row_json = R"({"source": "app"})";
  ASSERT_TRUE(ingestor().Push(item, &r).ok());
  EXPECT_EQ(Scalar("SELECT row_payload::text FROM labeling.items"),
            R"({"source": "app", "label_fields": {"confidence": 0.9}})");
  EXPECT_EQ(Scalar("SELECT cardinality(features) FROM labeling.items"),
            std::to_string(options_.text_feature_dim));
}

TEST_F(IngestTest, PushImagesThroughGrpcWithBase64AndImageValidators) {
  const int64_t p = CreateProject(
      "image", "{cat,dog}", "single", 1,
      R"({"image": {"formats": ["png"], "min_width": 4, "max_width": 64, "max_height": 64}})");
  IngestServiceImpl service(*pool_, options_);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  auto stub = v1::LabelingIngestService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  auto push = [&](const std::function<void(v1::PushItemRequest*)>& fill,
                  v1::PushItemResponse* resp) {
    grpc::ClientContext ctx;
    v1::PushItemRequest req;
    req.set_project_id(p);
    fill(&req);
    return stub->PushItem(&ctx, req, resp);
  };
  // base64 of a 16x16 PNG, encoded here.
  const std::string png = Png(16, 16);
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  for (size_t i = 0; i < png.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(png[i])) << 16;
    if (i + 1 < png.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(png[i + 1])) << 8;
    if (i + 2 < png.size()) v |= static_cast<unsigned char>(png[i + 2]);
    b64 += kAlphabet[(v >> 18) & 63];
    b64 += kAlphabet[(v >> 12) & 63];
    b64 += i + 1 < png.size() ? kAlphabet[(v >> 6) & 63] : '=';
    b64 += i + 2 < png.size() ? kAlphabet[v & 63] : '=';
  }
  v1::PushItemResponse resp;
  grpc::Status st = push(
      [&](v1::PushItemRequest* r) {
        r->set_external_id("cam-1");
        r->set_image_base64(b64);
        r->add_labels("dog");
      },
      &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(resp.created());
  EXPECT_EQ(resp.feature_dim(), 16 * 16 + 24);
  EXPECT_EQ(Scalar("SELECT length(image) FROM labeling.items"), std::to_string(png.size()));

  st = push(
      [&](v1::PushItemRequest* r) {
        r->set_external_id("cam-2");
        r->set_image(Jpeg(16, 16));
      },
      &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "image: image format jpeg is not allowed by the project (allowed: png)");
  st = push(
      [&](v1::PushItemRequest* r) {
        r->set_external_id("cam-3");
        r->set_image(Png(100, 10));
      },
      &resp);
  EXPECT_EQ(st.error_message(), "image: image 100x10 is wider than max_width 64");
  st = push(
      [&](v1::PushItemRequest* r) {
        r->set_external_id("cam-4");
        r->set_image("garbage");
      },
      &resp);
  EXPECT_EQ(st.error_message(), "image: not a PNG or JPEG image");
  st = push(
      [&](v1::PushItemRequest* r) {
        r->set_external_id("cam-5");
        r->set_image_base64("!!!");
      },
      &resp);
  EXPECT_EQ(st.error_message(), "image_base64: not valid base64");
  st = push([&](v1::PushItemRequest* r) { r->set_external_id("cam-6"); }, &resp);
  EXPECT_EQ(st.error_message(), "payload: set one of image_base64, image, text or features");
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 1);
  server->Shutdown();
}

}  // namespace
}  // namespace labelloop::labeling::ingest::test
