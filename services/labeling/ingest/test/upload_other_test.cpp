// JSON Lines, text projects and zips of images; hostile zips; random bytes.
#include <gtest/gtest.h>

#include <random>

#include "services/labeling/ingest/test/images.hpp"
#include "services/labeling/ingest/test/ingest_fixture.hpp"
#include "services/labeling/ingest/test/zip_maker.hpp"

namespace labelloop::labeling::ingest::test {
namespace {

UploadSpec Jsonl(int64_t p, ColumnMapping m) { return Spec(p, Format::kJsonl, std::move(m)); }

TEST_F(IngestTest, JsonLinesWithKeysOrAnArrayOfFeatures) {
  const int64_t p = CreateProject("tabular");
  UploadResult r;
  const std::string data =
      "{\"id\": \"a\", \"ts\": \"2024-05-01T12:30:00Z\", \"f1\": 1, \"f2\": 2, \"f3\": \"3.5\", "
      "\"label\": \"cat\", \"meta\": {\"k\": [1, 2]}}\n"
      "\n"
      "{\"id\": 7, \"ts\": 1714566600, \"f1\": 1, \"f2\": 2, \"f3\": 3}\r\n"
      "{\"id\": \"broken\", \n"
      "[1, 2]\n"
      "{\"id\": \"c\", \"f1\": 1, \"f2\": true, \"f3\": 3}\n"
      "{\"id\": \"d\", \"f1\": 1, \"f3\": 3}\n"
      "{\"id\": \"e\", \"f1\": 1, \"f2\": 2, \"f3\": 3, \"label\": [\"dog\"]}";
  ASSERT_TRUE(Upload(Jsonl(p, TabularMapping(true)), data, 9, &r).ok());
  EXPECT_EQ(r.items_inserted, 3);
  EXPECT_EQ(r.labels_imported, 2);
  ASSERT_EQ(r.rows_rejected, 4);
  EXPECT_EQ(r.rejected[0].line, 4);
  EXPECT_NE(r.rejected[0].reason.find("not valid JSON"), std::string::npos);
  EXPECT_EQ(r.rejected[1].line, 5);
  EXPECT_EQ(r.rejected[1].reason, "not a JSON object");
  EXPECT_EQ(r.rejected[2].line, 6);
  EXPECT_EQ(r.rejected[2].reason, "key 'f2': 'true' is not a number");
  EXPECT_EQ(r.rejected[3].line, 7);
  EXPECT_EQ(r.rejected[3].reason, "key 'f2': missing, expected a number");
  EXPECT_EQ(Scalar("SELECT features::text FROM labeling.items WHERE external_id = 'a'"),
            "{1,2,3.5}");
  EXPECT_EQ(Scalar("SELECT row_payload::text FROM labeling.items WHERE external_id = 'a'"),
            "{\"meta\": {\"k\": [1, 2]}}");
  EXPECT_EQ(Scalar("SELECT extract(epoch FROM sample_ts)::bigint FROM labeling.items "
                   "WHERE external_id = '7'"),
            "1714566600");

  const int64_t q = CreateProject("tabular");
  ColumnMapping m;
  m.external_id = "id";
  m.features = {"v"};
  ASSERT_TRUE(
      Upload(Jsonl(q, m), "{\"id\":\"x\",\"v\":[1,2,3,4]}\n{\"id\":\"y\",\"v\":[1]}\n", 1000, &r)
          .ok());
  EXPECT_EQ(r.feature_dim, 4);
  ASSERT_EQ(r.rows_rejected, 1);
  EXPECT_EQ(r.rejected[0].reason, "1 features, expected 4");
}

TEST_F(IngestTest, TextProjectsGetHashedNormalisedFeatures) {
  options_.text_feature_dim = 64;
  const int64_t p = CreateProject("text", "{pos,neg}");
  ColumnMapping m;
  m.external_id = "id";
  m.text = "body";
  m.label = "label";
  UploadResult r;
  ASSERT_TRUE(Upload(Spec(p, Format::kCsv, m),
                     "id,body,label\n1,\"Great product, works well\",pos\n2,\"\",\n3,Awful,neg\n",
                     4, &r)
                  .ok());
  EXPECT_EQ(r.items_inserted, 2);
  ASSERT_EQ(r.rows_rejected, 1);
  EXPECT_EQ(r.rejected[0].line, 3);
  EXPECT_EQ(r.rejected[0].reason, "empty text");
  EXPECT_EQ(Scalar("SELECT feature_dim FROM labeling.projects"), "64");
  EXPECT_EQ(Scalar("SELECT round(sqrt(sum(x * x))::numeric, 4) FROM labeling.items, "
                   "unnest(features) x WHERE external_id = '1'"),
            "1.0000");
  EXPECT_EQ(Scalar("SELECT text_payload FROM labeling.items WHERE external_id = '1'"),
            "Great product, works well");
  // Feature columns make no sense for text: the mapping is refused.
  m.features = {"x"};
  const Status st = Upload(Spec(p, Format::kCsv, m), "", 1, &r);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_NE(st.message.find("feature_columns must be empty"), std::string::npos);
}

UploadSpec ZipSpec(int64_t p, Mode mode = Mode::kCommitGoodRows) {
  return Spec(p, Format::kZipImages, {}, mode);
}

TEST_F(IngestTest, ZipOfImagesWithLabelsCsv) {
  options_.image_grid = 4;
  const int64_t p = CreateProject("image");
  const std::string png = Png(20, 10);
  const std::string zip = MakeZip({{"img/a.png", png},
                                   {"img/b.jpg", Jpeg(8, 8)},
                                   {"img/", ""},
                                   {"c.png", Png(3, 3, 0)},
                                   {"__MACOSX/._a.png", "junk"},
                                   {"labels.csv",
                                    "file,label,sample_ts\nimg/a.png,cat,"
                                    "2024-05-01T12:30:00Z\nc.png,dog,\n"}});
  UploadResult r;
  const Status st = Upload(ZipSpec(p), zip, 1000, &r);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(r.rows_rejected, 0) << (r.rejected.empty() ? "" : r.rejected[0].reason);
  EXPECT_EQ(r.items_inserted, 3);
  EXPECT_EQ(r.labels_imported, 2);
  EXPECT_EQ(r.feature_dim, 16 + 24);
  EXPECT_EQ(Scalar("SELECT image_format || length(image) FROM labeling.items WHERE "
                   "external_id = 'img/a.png'"),
            "png" + std::to_string(png.size()));
  EXPECT_EQ(Scalar("SELECT image_format FROM labeling.items WHERE external_id = 'img/b.jpg'"),
            "jpeg");
  EXPECT_EQ(Scalar("SELECT consensus::text || extract(epoch FROM sample_ts)::bigint FROM "
                   "labeling.items WHERE external_id = 'img/a.png'"),
            "{cat}1714566600");
  EXPECT_EQ(Scalar("SELECT cardinality(features) FROM labeling.items LIMIT 1"), "40");
  // The same zip again adds nothing.
  ASSERT_TRUE(Upload(ZipSpec(p), zip, 1 << 20, &r).ok());
  EXPECT_EQ(r.items_inserted, 0);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 3);
}

TEST_F(IngestTest, ZipBadEntriesAreRejectedByName) {
  const int64_t p = CreateProject("image");
  const std::string zip = MakeZip({{"good.png", Png(8, 8)},
                                   {"../evil.png", Png(8, 8)},
                                   {"/etc/abs.png", Png(8, 8)},
                                   {"broken.png", Png(8, 8).substr(0, 50)},
                                   {"notes.txt", "hello"},
                                   {"labels.csv", "file,label\ngood.png,cat\nmissing.png,dog\n"}});
  UploadResult r;
  ASSERT_TRUE(Upload(ZipSpec(p), zip, 777, &r).ok());
  EXPECT_EQ(r.items_inserted, 1);
  ASSERT_EQ(r.rows_rejected, 5);
  std::map<std::string, std::string> by_entry;
  for (const auto& rej : r.rejected) by_entry[rej.entry] += rej.reason;
  EXPECT_EQ(by_entry["../evil.png"], "path with '..' escapes the archive");
  EXPECT_EQ(by_entry["/etc/abs.png"], "absolute path in the archive");
  EXPECT_NE(by_entry["broken.png"].find("unreadable"), std::string::npos) << by_entry["broken.png"];
  EXPECT_EQ(by_entry["notes.txt"], "not a PNG or JPEG image");
  EXPECT_EQ(by_entry["labels.csv"], "line 3: no image named 'missing.png' in the zip");

  const Status st = Upload(ZipSpec(p, Mode::kAllOrNothing), zip, 777, &r);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_NE(st.message.find("entry '../evil.png': path with '..' escapes the archive"),
            std::string::npos)
      << st.message;
}

TEST_F(IngestTest, ZipBombsAndOversizedZipsStoreNothing) {
  const int64_t p = CreateProject("image");
  UploadResult r;
  Status st =
      Upload(ZipSpec(p), MakeZip({{"a.png", Png(8, 8)}, {"bomb.png", std::string(8 << 20, '\0')}}),
             1 << 16, &r);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_NE(st.message.find("zip rejected, nothing stored: entry 'bomb.png': compression ratio"),
            std::string::npos)
      << st.message;
  const std::string small = Png(8, 8);
  options_.zip_max_uncompressed_bytes = static_cast<int64_t>(small.size()) + 10;
  ingestor_.reset();
  st = Upload(ZipSpec(p), MakeZip({{"a.png", small}, {"big.png", Png(64, 64)}}), 1 << 16, &r);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_EQ(st.message,
            "zip rejected, nothing stored: entry 'big.png': the zip's uncompressed "
            "size exceeds the limit of " +
                std::to_string(small.size() + 10) + " bytes");
  options_.zip_max_uncompressed_bytes = 1 << 30;
  options_.max_image_pixels = 100;
  ingestor_.reset();
  ASSERT_TRUE(Upload(ZipSpec(p), MakeZip({{"huge.png", Png(20, 20)}}), 1 << 16, &r).ok());
  ASSERT_EQ(r.rows_rejected, 1);
  EXPECT_EQ(r.rejected[0].reason, "20x20 pixels, more than the limit of 100");
  st = Upload(ZipSpec(p), "this is not a zip", 4, &r);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_NE(st.message.find("not a readable zip archive"), std::string::npos);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 0);
}

TEST_F(IngestTest, ImageValidatorsApplyToZipEntries) {
  const int64_t p = CreateProject("image", "{cat,dog}", "single", 1,
                                  R"({"image": {"formats": ["png"], "min_width": 10}})");
  UploadResult r;
  ASSERT_TRUE(
      Upload(ZipSpec(p),
             MakeZip({{"small.png", Png(4, 20)}, {"j.jpg", Jpeg(16, 16)}, {"ok.png", Png(16, 16)}}),
             1 << 16, &r)
          .ok());
  EXPECT_EQ(r.items_inserted, 1);
  ASSERT_EQ(r.rows_rejected, 2);
  EXPECT_EQ(r.rejected[0].entry, "small.png");
  EXPECT_EQ(r.rejected[0].reason, "image 4x20 is narrower than min_width 10");
  EXPECT_EQ(r.rejected[1].reason, "image format jpeg is not allowed by the project (allowed: png)");
}

TEST_F(IngestTest, RandomBytesNeverCrash) {
  const int64_t tab = CreateProject("tabular");
  const int64_t img = CreateProject("image");
  std::mt19937 rng(42);
  for (int round = 0; round < 30; ++round) {
    std::string junk(static_cast<size_t>(rng() % 5000), '\0');
    for (auto& c : junk)
      c = static_cast<char>(rng() % 8 == 0 ? '"' : rng() % 8 == 1 ? '\n' : rng());
    UploadResult r;
    const Format f = static_cast<Format>(round % 3);
    const UploadSpec spec = Spec(f == Format::kZipImages ? img : tab, f, TabularMapping(true));
    const Status st = Upload(spec, "id,ts,f1,f2,f3,label\n" + junk, 1 + rng() % 300, &r);
    EXPECT_TRUE(st.ok() || st.code == Code::kInvalidArgument) << st.message;
  }
}

}  // namespace
}  // namespace labelloop::labeling::ingest::test
