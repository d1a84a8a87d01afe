// CSV uploads through the Ingestor against a real PostgreSQL: features, timestamps,
// payloads, labels, idempotency, both modes, each bad-row case with its message, and a
// 100,000-row upload through the gRPC adapter.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "services/labeling/ingest/ingest_service.hpp"
#include "services/labeling/ingest/test/ingest_fixture.hpp"

namespace labelloop::labeling::ingest::test {
namespace {

const std::string kGood =
    "id,ts,f1,f2,f3,note\n"
    "a,2024-05-01T12:30:00Z,1,2,3,plain\n"
    "b,,0.5,-1e2,7,\"quoted, with comma\"\n"
    "\"c\",1714566600,1,1,1,\"two\nlines ✓\"\n";

TEST_F(IngestTest, CsvStoresFeaturesTimestampsAndExtraColumns) {
  const int64_t p = CreateProject("tabular");
  UploadResult r;
  ASSERT_TRUE(UploadCsv(p, kGood, &r).ok());
  EXPECT_EQ(r.rows_read, 3);
  EXPECT_EQ(r.rows_accepted, 3);
  EXPECT_EQ(r.items_inserted, 3);
  EXPECT_EQ(r.rows_rejected, 0);
  EXPECT_EQ(r.feature_dim, 3);
  EXPECT_EQ(Scalar("SELECT feature_dim FROM labeling.projects"), "3");
  EXPECT_EQ(Scalar("SELECT features::text FROM labeling.items WHERE external_id = 'b'"),
            "{0.5,-100,7}");
  EXPECT_EQ(Scalar("SELECT extract(epoch FROM sample_ts)::bigint FROM labeling.items "
                   "WHERE external_id = 'a'"),
            "1714566600");
  EXPECT_EQ(Scalar("SELECT extract(epoch FROM sample_ts)::bigint FROM labeling.items "
                   "WHERE external_id = 'c'"),
            "1714566600");
  EXPECT_EQ(Scalar("SELECT sample_ts FROM labeling.items WHERE external_id = 'b'"), "");
  EXPECT_EQ(Scalar("SELECT row_payload->>'note' FROM labeling.items WHERE external_id = 'c'"),
            "two\nlines ✓");
  EXPECT_EQ(Scalar("SELECT row_payload->>'note' FROM labeling.items WHERE external_id = 'b'"),
            "quoted, with comma");
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items WHERE status = 'unlabeled' AND "
                  "judgements = 0"),
            3);
}

TEST_F(IngestTest, CsvSameFileTwiceAddsNothing) {
  const int64_t p = CreateProject("tabular");
  UploadResult r1, r2;
  ASSERT_TRUE(UploadCsv(p, kGood, &r1).ok());
  const std::string before = Scalar(
      "SELECT string_agg(id::text || features::text, ';' ORDER BY "
      "id) FROM labeling.items");
  ASSERT_TRUE(UploadCsv(p, kGood, &r2, Mode::kAllOrNothing, 5).ok());
  EXPECT_EQ(r2.rows_accepted, 3);
  EXPECT_EQ(r2.items_inserted, 0);
  EXPECT_EQ(r2.duplicates, 3);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 3);
  EXPECT_EQ(Scalar("SELECT string_agg(id::text || features::text, ';' ORDER BY id) FROM "
                   "labeling.items"),
            before);
}

TEST_F(IngestTest, CsvDuplicateIdsInOneFileKeepTheFirst) {
  const int64_t p = CreateProject("tabular");
  UploadResult r;
  const Status st = UploadCsv(p, "id,ts,f1,f2,f3\na,,1,1,1\nb,,2,2,2\na,,3,3,3\n", &r);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(r.rows_accepted, 3);
  EXPECT_EQ(r.items_inserted, 2);
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_EQ(Scalar("SELECT features::text FROM labeling.items WHERE external_id = 'a'"), "{1,1,1}");
}

// Into a project without items the rows are COPYed straight into labeling.items; an
// external id committed meanwhile by another upload makes that COPY fail, and the upload
// then goes through staging and ON CONFLICT: the item stored first stays as it is.
TEST_F(IngestTest, CsvUploadMeetingAnItemStoredMeanwhileKeepsIt) {
  const int64_t p = CreateProject("tabular");
  std::unique_ptr<UploadSession> slow;
  ASSERT_TRUE(ingestor().BeginUpload(Spec(p, Format::kCsv, TabularMapping()), &slow).ok());
  ASSERT_TRUE(slow->Feed("id,ts,f1,f2,f3\na,,1,1,1\n").ok());
  UploadResult other;
  ASSERT_TRUE(UploadCsv(p, "id,ts,f1,f2,f3\nb,,9,9,9\n", &other).ok());
  EXPECT_EQ(other.items_inserted, 1);
  ASSERT_TRUE(slow->Feed("b,,2,2,2\nc,,3,3,3\n").ok());
  UploadResult r;
  const Status st = slow->Finish(&r);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(r.rows_accepted, 3);
  EXPECT_EQ(r.items_inserted, 2);
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_EQ(Scalar("SELECT string_agg(external_id || features::text, ' ' ORDER BY external_id) "
                   "FROM labeling.items"),
            "a{1,1,1} b{9,9,9} c{3,3,3}");
  EXPECT_EQ(Scalar("SELECT feature_dim FROM labeling.projects WHERE id = " + std::to_string(p)),
            "3");
}

// Two uploads into one empty project, both COPYing straight into items, each inserting
// an external id the other holds uncommitted: PostgreSQL breaks the deadlock by failing
// one COPY, and that upload stages its rows instead. Both succeed; each id is stored once.
TEST_F(IngestTest, CrossingDirectUploadsBothSucceed) {
  options_.copy_buffer_bytes = 1;  // every row is sent as soon as it is parsed
  const int64_t p = CreateProject("tabular");
  std::unique_ptr<UploadSession> a, b;
  ASSERT_TRUE(ingestor().BeginUpload(Spec(p, Format::kCsv, TabularMapping()), &a).ok());
  ASSERT_TRUE(ingestor().BeginUpload(Spec(p, Format::kCsv, TabularMapping()), &b).ok());
  // The server inserts COPY rows in batches (at most 1000 rows or 64 kB), so each block
  // holds 1000 rows and is followed by a row of its own.
  auto block = [](const std::string& prefix, const std::string& value) {
    std::string rows;
    for (int i = 0; i < 1000; ++i) rows += prefix + std::to_string(i) + ",," + value + "\n";
    return rows;
  };
  pqxx::connection watch(db_->url());
  auto wait_for = [&](const std::string& sql) {
    for (int i = 0; i < 3000; ++i) {
      pqxx::nontransaction tx(watch);
      if (tx.exec(sql)[0][0].as<bool>()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(a->Feed("id,ts,f1,f2,f3\n" + block("x", "1,1,1") + "a1,,1,1,1\n").ok());
  ASSERT_TRUE(b->Feed("id,ts,f1,f2,f3\n" + block("y", "2,2,2") + "b1,,2,2,2\n").ok());
  ASSERT_TRUE(
      wait_for("SELECT count(*) = 2 AND min(tuples_processed) >= 1000 FROM "
               "pg_stat_progress_copy"));
  ASSERT_TRUE(a->Feed(block("y", "1,1,1") + "a2,,1,1,1\n").ok());  // waits for b's transaction
  ASSERT_TRUE(
      wait_for("SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = current_database() AND "
               "wait_event_type = 'Lock'"));
  ASSERT_TRUE(b->Feed(block("x", "2,2,2") + "b2,,2,2,2\n").ok());  // waits for a's: deadlock
  UploadResult ra, rb;
  Status sa, sb;
  std::thread ta([&] { sa = a->Finish(&ra); });
  std::thread tb([&] { sb = b->Finish(&rb); });
  ta.join();
  tb.join();
  ASSERT_TRUE(sa.ok()) << sa.message;
  ASSERT_TRUE(sb.ok()) << sb.message;
  EXPECT_EQ(ra.items_inserted + rb.items_inserted, 2004);
  EXPECT_EQ(ra.duplicates + rb.duplicates, 2000);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 2004);
}

// Into a project that has items, the first COPY buffer decides: new external ids go
// straight into items (and one met later falls back to ON CONFLICT), a file uploaded
// again goes through staging from the start. The outcome is the same either way.
TEST_F(IngestTest, CsvUploadsIntoAProjectWithItemsAddOnlyNewIds) {
  options_.copy_buffer_bytes = 4096;  // the minimum: one buffer of about 60 rows
  const int64_t p = CreateProject("tabular");
  std::string first = "id,ts,f1,f2,f3\n", second = "id,ts,f1,f2,f3\n";
  for (int i = 0; i < 300; ++i) first += "old-" + std::to_string(i) + ",,1,1,1\n";
  for (int i = 0; i < 300; ++i) second += "new-" + std::to_string(i) + ",,2,2,2\n";
  second += "old-7,,2,2,2\n";  // after the first buffer: the direct COPY meets it
  UploadResult r1, r2, r3;
  ASSERT_TRUE(UploadCsv(p, first, &r1).ok());
  EXPECT_EQ(r1.items_inserted, 300);
  Status st = UploadCsv(p, second, &r2, Mode::kAllOrNothing);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(r2.items_inserted, 300);
  EXPECT_EQ(r2.duplicates, 1);
  st = UploadCsv(p, second, &r3, Mode::kAllOrNothing, 100);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(r3.items_inserted, 0);
  EXPECT_EQ(r3.duplicates, 301);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 600);
  EXPECT_EQ(Scalar("SELECT features::text FROM labeling.items WHERE external_id = 'old-7'"),
            "{1,1,1}");
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items WHERE external_id LIKE 'new-%' AND "
                  "features = '{2,2,2}'"),
            300);
}

// Items carry no foreign key to their project (migration 0005); a project that has
// items cannot be deleted all the same.
TEST_F(IngestTest, AProjectWithItemsCannotBeDeleted) {
  const int64_t p = CreateProject("tabular");
  const int64_t empty = CreateProject("tabular");
  UploadResult r;
  ASSERT_TRUE(UploadCsv(p, kGood, &r).ok());
  pqxx::connection c(db_->url());
  try {
    pqxx::work tx(c);
    tx.exec("DELETE FROM labeling.projects WHERE id = " + std::to_string(p));
    ADD_FAILURE() << "a project with items was deleted";
  } catch (const pqxx::foreign_key_violation& e) {
    EXPECT_NE(std::string(e.what()).find("has items: archive it instead of deleting it"),
              std::string::npos)
        << e.what();
  }
  pqxx::work tx(c);
  EXPECT_EQ(
      tx.exec("DELETE FROM labeling.projects WHERE id = " + std::to_string(empty)).affected_rows(),
      1u);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM labeling.projects")[0][0].as<int64_t>(), 1);
}

TEST_F(IngestTest, CsvChunkSizeDoesNotMatter) {
  const int64_t p1 = CreateProject("tabular");
  const int64_t p2 = CreateProject("tabular");
  UploadResult r1, r2;
  ASSERT_TRUE(UploadCsv(p1, kGood, &r1, Mode::kAllOrNothing, 1).ok());
  ASSERT_TRUE(UploadCsv(p2, kGood, &r2, Mode::kAllOrNothing, 1 << 20).ok());
  auto dump = [&](int64_t p) {
    return Scalar(
        "SELECT string_agg(external_id || sample_ts::text || features::text || "
        "coalesce(row_payload::text, ''), ';' ORDER BY external_id) FROM "
        "labeling.items WHERE project_id = " +
        std::to_string(p));
  };
  EXPECT_EQ(dump(p1), dump(p2));
}

// One file with each kind of bad row; line numbers count embedded newlines.
const std::string kBad =
    "id,ts,f1,f2,f3\n"      // 1
    "ok1,,1,2,3\n"          // 2
    "short,,1,2\n"          // 3 wrong column count
    "\"q\"x,,1,2,3\n"       // 4 does not parse
    "nan,,1,abc,3\n"        // 5 not a number
    "ts,yesterday,1,2,3\n"  // 6 bad timestamp
    ",,1,2,3\n"             // 7 empty external id
    "\"ok\n2\",,4,5,6\n"    // 8-9 ok, embedded newline
    "empty,,1,,3\n"         // 10 empty number
    "bad\xff,,1,2,3\n";     // 11 invalid UTF-8

void ExpectBadRows(const UploadResult& r) {
  ASSERT_EQ(r.rows_rejected, 7);
  ASSERT_EQ(r.rejected.size(), 7U);
  EXPECT_EQ(r.rejected[0].line, 3);
  EXPECT_EQ(r.rejected[0].reason, "4 fields, the header has 5");
  EXPECT_EQ(r.rejected[1].line, 4);
  EXPECT_NE(r.rejected[1].reason.find("unexpected character after a closing quote"),
            std::string::npos);
  EXPECT_EQ(r.rejected[2].line, 5);
  EXPECT_EQ(r.rejected[2].reason, "column 'f2': 'abc' is not a finite number");
  EXPECT_EQ(r.rejected[3].line, 6);
  EXPECT_NE(r.rejected[3].reason.find("column 'ts': 'yesterday' is not an ISO-8601 time"),
            std::string::npos);
  EXPECT_EQ(r.rejected[4].line, 7);
  EXPECT_EQ(r.rejected[4].reason, "empty external id");
  EXPECT_EQ(r.rejected[5].line, 10);
  EXPECT_EQ(r.rejected[5].reason, "column 'f2': '' is empty, expected a number");
  EXPECT_EQ(r.rejected[6].line, 11);
  EXPECT_EQ(r.rejected[6].reason, "external id is not valid UTF-8");
}

TEST_F(IngestTest, CsvCommitGoodRowsReturnsRejectsWithLineNumbers) {
  const int64_t p = CreateProject("tabular");
  UploadResult r;
  ASSERT_TRUE(UploadCsv(p, kBad, &r, Mode::kCommitGoodRows, 3).ok());
  EXPECT_EQ(r.rows_read, 9);
  EXPECT_EQ(r.rows_accepted, 2);
  EXPECT_EQ(r.items_inserted, 2);
  ExpectBadRows(r);
  EXPECT_EQ(Scalar("SELECT string_agg(external_id, ',' ORDER BY external_id) FROM "
                   "labeling.items"),
            "ok\n2,ok1");
}

TEST_F(IngestTest, CsvAllOrNothingStoresNothingAndListsRejects) {
  const int64_t p = CreateProject("tabular");
  UploadResult r;
  const Status st = UploadCsv(p, kBad, &r, Mode::kAllOrNothing, 7);
  ASSERT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_NE(st.message.find("upload rejected, nothing stored: 7 of 9 rows are invalid"),
            std::string::npos)
      << st.message;
  EXPECT_NE(st.message.find("line 3: 4 fields, the header has 5"), std::string::npos);
  EXPECT_NE(st.message.find("line 11: external id is not valid UTF-8"), std::string::npos);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 0);
  EXPECT_EQ(Scalar("SELECT feature_dim FROM labeling.projects"), "");
}

TEST_F(IngestTest, CsvUnterminatedQuoteIsRejectedWithItsLine) {
  const int64_t p = CreateProject("tabular");
  UploadResult r;
  ASSERT_TRUE(UploadCsv(p, "id,ts,f1,f2,f3\na,,1,2,3\nb,,\"1,2,3\nc,,1,2,3\n", &r).ok());
  ASSERT_EQ(r.rows_rejected, 1);
  EXPECT_EQ(r.rejected[0].line, 3);
  EXPECT_NE(r.rejected[0].reason.find("unterminated quoted field"), std::string::npos);
  EXPECT_EQ(r.items_inserted, 1);
}

TEST_F(IngestTest, CsvHeaderProblemsFailTheWholeUpload) {
  const int64_t p = CreateProject("tabular");
  UploadResult r;
  Status st = UploadCsv(p, "id,ts,f1,f2\na,,1,2\n", &r);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_EQ(st.message,
            "column 'f3' (feature) named in the mapping is not in the CSV header (line 1)");
  st = UploadCsv(p, "", &r);
  EXPECT_EQ(st.message, "the CSV is empty: no header line");
  options_.max_row_bytes = 2048;
  ingestor_.reset();
  st = UploadCsv(p, "id,ts,f1,f2,f3\na,,\"" + std::string(5000, 'x'), &r);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_NE(st.message.find("line 2: record longer than 2048 bytes"), std::string::npos);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 0);
}

TEST_F(IngestTest, FeatureDimIsFixedByTheFirstIngestion) {
  const int64_t p = CreateProject("tabular");
  UploadResult r;
  ASSERT_TRUE(UploadCsv(p, kGood, &r).ok());
  UploadSpec spec = Spec(p, Format::kCsv, TabularMapping());
  spec.mapping.features = {"f1", "f2"};
  const Status st = Upload(spec, "id,ts,f1,f2\nz,,1,2\n", 100, &r);
  EXPECT_EQ(st.code, Code::kFailedPrecondition);
  EXPECT_EQ(st.message,
            "project " + std::to_string(p) +
                " has feature_dim 3 (fixed by its first ingestion); this upload's items have 2 "
                "features");
}

TEST_F(IngestTest, CsvLabelsAreImportedAsSingleJudgements) {
  const int64_t p = CreateProject("tabular", "{cat,dog}");
  UploadResult r;
  ASSERT_TRUE(UploadCsv(p,
                        "id,ts,f1,f2,f3,label\n"
                        "a,,1,2,3,cat\n"
                        "b,,1,2,3,\n"
                        "c,,1,2,3,dog\n"
                        "d,,1,2,3,cow\n"
                        "e,,1,2,3,cat|dog\n",
                        &r)
                  .ok());
  EXPECT_EQ(r.items_inserted, 3);
  EXPECT_EQ(r.labels_imported, 2);
  ASSERT_EQ(r.rows_rejected, 2);
  EXPECT_EQ(r.rejected[0].line, 5);
  EXPECT_EQ(r.rejected[0].reason,
            "label 'cow' is not a class of project " + std::to_string(p) + " (classes: cat, dog)");
  EXPECT_EQ(r.rejected[1].reason,
            "2 labels given, the project is single-choice (one class per item)");
  EXPECT_EQ(Scalar("SELECT status || judgements || consensus::text FROM labeling.items WHERE "
                   "external_id = 'a'"),
            "labeled1{cat}");
  EXPECT_EQ(Scalar("SELECT status || judgements FROM labeling.items WHERE external_id = 'b'"),
            "unlabeled0");
  EXPECT_EQ(Scalar("SELECT string_agg(annotator || classes::text, ',') FROM labeling.labels"),
            "import{cat},import{dog}");
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.label_history WHERE old_classes IS NULL"), 2);
  EXPECT_EQ(Count("SELECT sum(labeled) FROM labeling.label_counts"), 2);
  // Uploading again imports no second label.
  ASSERT_TRUE(UploadCsv(p, "id,ts,f1,f2,f3,label\na,,1,2,3,dog\n", &r).ok());
  EXPECT_EQ(r.labels_imported, 0);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.labels"), 2);
}

TEST_F(IngestTest, CsvLabelsWithSeveralJudgementsPerItemAndMultiLabel) {
  const int64_t p = CreateProject("tabular", "{a,b,c}", "multi", 3);
  UploadResult r;
  ASSERT_TRUE(UploadCsv(p, "id,ts,f1,f2,f3,label\nx,,1,2,3,a | c\n", &r).ok());
  EXPECT_EQ(r.labels_imported, 1);
  EXPECT_EQ(Scalar("SELECT status || judgements || coalesce(consensus::text, 'null') FROM "
                   "labeling.items"),
            "unlabeled1null");
  EXPECT_EQ(Scalar("SELECT classes::text FROM labeling.labels"), "{a,c}");
  EXPECT_EQ(Scalar("SELECT sum(labeled) FROM labeling.label_counts"), "");
}

TEST_F(IngestTest, UploadsNeedAnActiveExistingProject) {
  UploadResult r;
  Status st = UploadCsv(999, kGood, &r);
  EXPECT_EQ(st.code, Code::kNotFound);
  EXPECT_EQ(st.message, "project 999 does not exist");
  const int64_t p = CreateProject("tabular");
  Scalar("UPDATE labeling.projects SET status = 'archived' RETURNING 1");
  st = UploadCsv(p, kGood, &r);
  EXPECT_EQ(st.code, Code::kFailedPrecondition);
  EXPECT_NE(st.message.find("is archived"), std::string::npos);
}

TEST_F(IngestTest, ConcurrentUploadsAreCapped) {
  const int64_t p = CreateProject("tabular");
  options_.max_concurrent_uploads = 1;
  std::unique_ptr<UploadSession> first, second;
  ASSERT_TRUE(ingestor().BeginUpload(Spec(p, Format::kCsv, TabularMapping()), &first).ok());
  const Status st = ingestor().BeginUpload(Spec(p, Format::kCsv, TabularMapping()), &second);
  EXPECT_EQ(st.code, Code::kResourceExhausted);
  EXPECT_EQ(st.message, "1 uploads are already in progress: retry when one has finished");
  first.reset();  // abandoned: rolled back, the slot is free again
  ASSERT_TRUE(ingestor().BeginUpload(Spec(p, Format::kCsv, TabularMapping()), &second).ok());
  ASSERT_TRUE(second->Feed("id,ts,f1,f2,f3\nz,,1,2,3\n").ok());
  UploadResult r;
  ASSERT_TRUE(second->Finish(&r).ok());
  EXPECT_EQ(r.items_inserted, 1);
}

// 100,000 rows through the real gRPC adapter (in-process server, 1 MiB messages).
TEST_F(IngestTest, HundredThousandRowCsvThroughGrpc) {
  const int64_t p = CreateProject("tabular", "{cat,dog}");
  IngestServiceImpl service(*pool_, options_);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(8 << 20);
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server);
  auto stub = v1::LabelingIngestService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  std::string csv = "id,ts,f1,f2,f3,label\n";
  for (int i = 0; i < 100000; ++i) {
    csv += "row-" + std::to_string(i) + ",2024-01-01T00:00:00Z," + std::to_string(i) + ".5," +
           std::to_string(i % 7) + ",-1," + (i % 10 == 0 ? "dog" : "") + "\n";
  }
  auto upload = [&](v1::UploadResponse* resp) {
    grpc::ClientContext ctx;
    auto writer = stub->Upload(&ctx, resp);
    v1::UploadRequest req;
    auto* h = req.mutable_header();
    h->set_project_id(p);
    h->set_format(v1::UPLOAD_FORMAT_CSV);
    h->set_mode(v1::UPLOAD_MODE_ALL_OR_NOTHING);
    auto* m = h->mutable_mapping();
    m->set_external_id_column("id");
    m->set_sample_ts_column("ts");
    m->set_label_column("label");
    for (const char* f : {"f1", "f2", "f3"}) m->add_feature_columns(f);
    EXPECT_TRUE(writer->Write(req));
    for (size_t i = 0; i < csv.size(); i += 1 << 20) {
      v1::UploadRequest chunk;
      chunk.set_chunk(csv.substr(i, 1 << 20));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  };
  v1::UploadResponse resp;
  grpc::Status st = upload(&resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.rows_read(), 100000);
  EXPECT_EQ(resp.items_inserted(), 100000);
  EXPECT_EQ(resp.labels_imported(), 10000);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items"), 100000);
  EXPECT_EQ(Count("SELECT count(*) FROM labeling.items WHERE status = 'labeled'"), 10000);
  EXPECT_EQ(Scalar("SELECT features::text FROM labeling.items WHERE external_id = 'row-99999'"),
            "{99999.5,4,-1}");
  v1::UploadResponse again;
  st = upload(&again);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(again.items_inserted(), 0);
  EXPECT_EQ(again.duplicates(), 100000);
  server->Shutdown();
}

}  // namespace
}  // namespace labelloop::labeling::ingest::test
