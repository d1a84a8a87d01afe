// The dl_manager binaries end to end: requests over gRPC, archives built from fixture
// rows in the labeling and training schemas, fetched back and checked with libzip,
// `unzip -t` and pandas; replicas racing, a builder down while requests arrive,
// SIGKILL and SIGTERM in the middle of a build, missing projects and models.
#include <gtest/gtest.h>
#include <signal.h>
#include <zip.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/testing/testing.hpp"
#include "labelloop/v1/dl_manager.grpc.pb.h"
#include "services/dl_manager/archive/sha256.hpp"
#include "tests/e2e/dl_manager/fixture.hpp"

namespace labelloop::dl_manager {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Stub = v1::DlManagerService::Stub;

const std::vector<std::string> kEntries = {
    "human_labels.json",    "machine_labels.json", "timestamps.json", "classifier/model.json",
    "classifier/README.md", "README.md",           "manifest.json"};

class DlManagerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = labelloop::testing::AdminPgUrl();
    auto redis = labelloop::testing::TestRedis();
    if (!url || !redis) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)";
    db_ = std::make_unique<labelloop::testing::TempDatabase>(*url);
    redis_ = *redis;
    fixture_ = std::make_unique<testing::Fixture>(db_->url());
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("dl_e2e_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::unique_ptr<labelloop::testing::ServiceUnderTest> Start(std::vector<std::string> args = {}) {
    std::vector<std::string> all = {"--sweep-ms", "200",           "--lease-ms",
                                    "1500",       "--progress-ms", "100"};
    all.insert(all.end(), args.begin(), args.end());
    auto svc = std::make_unique<labelloop::testing::ServiceUnderTest>("labelloop-dl-manager",
                                                                      db_->url(), redis_, all);
    EXPECT_TRUE(svc->WaitServing(seconds(30))) << svc->Log();
    return svc;
  }

  static std::unique_ptr<Stub> StubOf(const labelloop::testing::ServiceUnderTest& svc) {
    return v1::DlManagerService::NewStub(svc.Channel());
  }

  static grpc::Status Request(Stub& stub, int64_t project, int64_t model,
                              v1::RequestDownloadResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::RequestDownloadRequest req;
    req.set_project_id(project);
    req.set_model_id(model);
    req.set_requested_by("e2e");
    return stub.RequestDownload(&ctx, req, out);
  }

  static std::optional<v1::Download> Get(Stub& stub, int64_t id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(5));
    v1::GetDownloadRequest req;
    req.set_download_id(id);
    v1::Download d;
    if (!stub.GetDownload(&ctx, req, &d).ok()) return std::nullopt;
    return d;
  }

  static v1::Download WaitStatus(Stub& stub, int64_t id, v1::DownloadStatus status,
                                 milliseconds timeout = seconds(60)) {
    v1::Download last;
    labelloop::testing::WaitFor(
        [&] {
          auto d = Get(stub, id);
          if (d) last = *d;
          return d && d->status() == status;
        },
        timeout);
    return last;
  }

  // FetchArchive from offset into memory; returns the status.
  static grpc::Status Fetch(Stub& stub, int64_t id, int64_t offset, std::string* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(60));
    v1::FetchArchiveRequest req;
    req.set_download_id(id);
    req.set_offset(offset);
    auto reader = stub.FetchArchive(&ctx, req);
    v1::ArchiveChunk chunk;
    int64_t expected = offset;
    while (reader->Read(&chunk)) {
      EXPECT_EQ(chunk.offset(), expected);
      expected += static_cast<int64_t>(chunk.data().size());
      out->append(chunk.data());
    }
    return reader->Finish();
  }

  std::string SaveArchive(Stub& stub, int64_t id, const std::string& name) {
    std::string bytes;
    auto st = Fetch(stub, id, 0, &bytes);
    EXPECT_TRUE(st.ok()) << st.error_message();
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  int64_t Count(const std::string& sql) { return fixture_->Count(sql); }

  std::unique_ptr<labelloop::testing::TempDatabase> db_;
  std::pair<std::string, int> redis_;
  std::unique_ptr<testing::Fixture> fixture_;
  std::filesystem::path dir_;
};

std::string ReadEntry(zip_t* z, const std::string& name) {
  zip_file_t* f = zip_fopen(z, name.c_str(), 0);
  if (f == nullptr) return "";
  std::string out;
  char buf[65536];
  zip_int64_t n;
  while ((n = zip_fread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  zip_fclose(f);
  return out;
}

// Opens the archive with libzip (consistency checks on), checks every entry against the
// manifest (size, records, sha256) and returns entry name -> contents.
std::map<std::string, std::string> OpenAndVerify(const std::string& path) {
  std::map<std::string, std::string> out;
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  EXPECT_NE(z, nullptr) << "libzip cannot open the archive, error " << err;
  if (z == nullptr) return out;
  std::set<std::string> names;
  for (zip_int64_t i = 0; i < zip_get_num_entries(z, 0); ++i) {
    names.insert(zip_get_name(z, static_cast<zip_uint64_t>(i), 0));
  }
  EXPECT_EQ(names, std::set<std::string>(kEntries.begin(), kEntries.end()));
  for (const auto& name : names) out[name] = ReadEntry(z, name);
  zip_close(z);
  json manifest = json::parse(out["manifest.json"]);
  EXPECT_EQ(manifest["entries"].size(), kEntries.size() - 1);  // all but itself
  for (const auto& e : manifest["entries"]) {
    const std::string name = e["name"];
    EXPECT_EQ(e["bytes"].get<size_t>(), out[name].size()) << name;
    EXPECT_EQ(e["sha256"].get<std::string>(), Sha256::Of(out[name])) << name;
    if (name.ends_with(".json") && name.find('/') == std::string::npos) {
      EXPECT_EQ(e["records"].get<size_t>(), json::parse(out[name]).size()) << name;
    }
  }
  EXPECT_EQ(labelloop::testing::Shell("unzip -tqq " + path + " > /dev/null"), 0)
      << "unzip -t rejects " << path;
  return out;
}

TEST_F(DlManagerE2E, BuildsAnArchiveWhoseEntriesMatchTheDatabase) {
  auto seeded = fixture_->Seed({.items = 30, .labeled = 10});
  auto svc = Start();
  auto stub = StubOf(*svc);

  v1::RequestDownloadResponse first, again;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &first).ok());
  EXPECT_TRUE(first.created());
  EXPECT_EQ(first.download().status(), v1::DOWNLOAD_STATUS_REQUESTED);
  ASSERT_TRUE(Request(*stub, seeded.project_id, 0, &again).ok());  // 0: the latest model
  EXPECT_FALSE(again.created());
  EXPECT_EQ(again.download().download_id(), first.download().download_id());

  const int64_t id = first.download().download_id();
  v1::Download d = WaitStatus(*stub, id, v1::DOWNLOAD_STATUS_AVAILABLE);
  ASSERT_EQ(d.status(), v1::DOWNLOAD_STATUS_AVAILABLE) << d.message() << svc->Log();
  EXPECT_EQ(d.attempts(), 1);
  EXPECT_EQ(d.entry_counts().at("human_labels.json"), 10);
  EXPECT_EQ(d.entry_counts().at("machine_labels.json"), 20);
  // Items 3, 6 and 9 have a second annotator's label: 30 items + 3 extra label rows.
  EXPECT_EQ(d.entry_counts().at("timestamps.json"), 33);
  EXPECT_EQ(d.rows_written(), 63);
  EXPECT_TRUE(d.has_finished_at());

  // The archive as fetched matches the recorded size and sha256; a resumed fetch
  // returns exactly the tail.
  std::string bytes;
  ASSERT_TRUE(Fetch(*stub, id, 0, &bytes).ok());
  EXPECT_EQ(static_cast<int64_t>(bytes.size()), d.size_bytes());
  EXPECT_EQ(Sha256::Of(bytes), d.sha256());
  std::string tail;
  ASSERT_TRUE(Fetch(*stub, id, d.size_bytes() / 2, &tail).ok());
  EXPECT_EQ(tail, bytes.substr(static_cast<size_t>(d.size_bytes() / 2)));
  std::string none;
  EXPECT_EQ(Fetch(*stub, id, d.size_bytes() + 1, &none).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);

  const std::string path = (dir_ / "a.zip").string();
  std::ofstream(path, std::ios::binary) << bytes;
  auto entries = OpenAndVerify(path);

  json manifest = json::parse(entries["manifest.json"]);
  EXPECT_EQ(manifest["project"]["project_id"], seeded.project_id);
  EXPECT_EQ(manifest["model"]["model_id"], seeded.model_id);
  EXPECT_EQ(manifest["machine_labels_source"], "stored_predictions");
  EXPECT_FALSE(manifest["labelloop_version"].get<std::string>().empty());
  EXPECT_TRUE(manifest["schema"].contains("machine_labels.json"));
  EXPECT_EQ(manifest["counts"]["human_labels.json"], 10);

  // Human labels: the consensus of every labeled item, with its annotators.
  json human = json::parse(entries["human_labels.json"]);
  ASSERT_EQ(human.size(), 10u);
  for (const auto& h : human) {
    const int64_t item = h["item_id"];
    const std::string expected_class = std::string(1, "abc"[item % 3]);
    EXPECT_EQ(h["labels"], json::array({expected_class})) << h;
    EXPECT_EQ(h["external_id"], "ext-" + std::to_string(item));
    EXPECT_FALSE(h["sample_ts"].is_null());
    EXPECT_FALSE(h["labeled_at"].is_null());
    EXPECT_EQ(h["annotators"].size(), item % 3 == 0 ? 2u : 1u) << h;
  }
  // Machine labels: the stored probabilities, the argmax and its confidence.
  json machine = json::parse(entries["machine_labels.json"]);
  ASSERT_EQ(machine.size(), 20u);
  std::set<int64_t> machine_ids;
  for (const auto& m : machine) {
    const int64_t item = m["item_id"];
    machine_ids.insert(item);
    const double pa = static_cast<float>(item % 10) / 20.0f;
    EXPECT_NEAR(m["probabilities"]["a"].get<double>(), pa, 1e-6) << m;
    EXPECT_NEAR(m["probabilities"]["b"].get<double>(), 0.25, 1e-6);
    EXPECT_NEAR(m["probabilities"]["c"].get<double>(), 0.75 - pa, 1e-6);
    const double pc = 0.75 - pa;
    const std::string best = pa > pc && pa > 0.25 ? "a" : (pc > 0.25 ? "c" : "b");
    EXPECT_EQ(m["predicted"], json::array({best})) << m;
    EXPECT_NEAR(m["confidence"].get<double>(), std::max({pa, 0.25, pc}), 1e-6);
  }
  EXPECT_EQ(*machine_ids.begin(), 11);
  EXPECT_EQ(*machine_ids.rbegin(), 30);
  // Timestamps: every item, and each label's submission time.
  json stamps = json::parse(entries["timestamps.json"]);
  std::set<int64_t> stamp_items;
  int with_label = 0;
  for (const auto& t : stamps) {
    stamp_items.insert(t["item_id"].get<int64_t>());
    if (!t["submitted_at"].is_null()) ++with_label;
  }
  EXPECT_EQ(stamp_items.size(), 30u);
  EXPECT_EQ(with_label, 13);
  // The classifier is the model JSON as stored.
  json model = json::parse(entries["classifier/model.json"]);
  EXPECT_EQ(model["classes"], json::array({"a", "b", "c"}));
  EXPECT_EQ(model["layers"].size(), 1u);
  EXPECT_NE(entries["classifier/README.md"].find("import numpy"), std::string::npos);

  // Built exactly once; a changed label state makes a new request.
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.builds"), 1);
  fixture_->pool().Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params("UPDATE labeling.labels SET updated_at = now() WHERE item_id = 1");
    tx.commit();
  });
  v1::RequestDownloadResponse changed;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &changed).ok());
  EXPECT_TRUE(changed.created());
  EXPECT_NE(changed.download().download_id(), id);

  {
    grpc::ClientContext ctx;
    v1::ListDownloadsRequest req;
    req.set_project_id(seeded.project_id);
    v1::ListDownloadsResponse list;
    ASSERT_TRUE(stub->ListDownloads(&ctx, req, &list).ok());
    EXPECT_EQ(list.downloads_size(), 2);
  }
  {
    grpc::ClientContext ctx;
    v1::DeleteDownloadRequest req;
    req.set_download_id(id);
    v1::DeleteDownloadResponse resp;
    ASSERT_TRUE(stub->DeleteDownload(&ctx, req, &resp).ok());
    EXPECT_FALSE(Get(*stub, id).has_value());
    std::string gone;
    EXPECT_EQ(Fetch(*stub, id, 0, &gone).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.archive_chunks c JOIN dl_manager.builds b "
                    "ON b.id = c.build_id WHERE b.download_id = " +
                    std::to_string(id)),
              0);
  }
}

TEST_F(DlManagerE2E, AppliesTheModelWhenStoredPredictionsDoNotCoverEveryItem) {
  // One unlabeled item without a stored prediction: the model is applied to all.
  auto seeded = fixture_->Seed({.items = 40, .labeled = 10, .without_prediction = {25}});
  auto svc = Start();
  auto stub = StubOf(*svc);
  v1::RequestDownloadResponse r;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &r).ok());
  auto d = WaitStatus(*stub, r.download().download_id(), v1::DOWNLOAD_STATUS_AVAILABLE);
  ASSERT_EQ(d.status(), v1::DOWNLOAD_STATUS_AVAILABLE) << d.message();
  auto entries = OpenAndVerify(SaveArchive(*stub, d.download_id(), "m.zip"));
  EXPECT_EQ(json::parse(entries["manifest.json"])["machine_labels_source"], "model");

  // The expected probabilities, computed here from the model JSON and the features.
  const json model = testing::Fixture::ModelJson(4);
  std::map<int64_t, std::vector<double>> features;
  fixture_->pool().Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    for (const auto& row : tx.exec("SELECT item_id, array_to_json(features)::text FROM "
                                   "labeling.v_items WHERE NOT labeled")) {
      features[row[0].as<int64_t>()] = json::parse(row[1].c_str()).get<std::vector<double>>();
    }
    return 0;
  });
  json machine = json::parse(entries["machine_labels.json"]);
  ASSERT_EQ(machine.size(), 30u);
  for (const auto& m : machine) {
    const auto& x = features.at(m["item_id"].get<int64_t>());
    std::vector<double> z(3);
    for (int c = 0; c < 3; ++c) {
      z[c] = model["layers"][0]["bias"][c].get<double>();
      for (int k = 0; k < 4; ++k) {
        double sd = model["standardization"]["std"][k].get<double>();
        if (sd == 0) sd = 1;
        const double xs = (x[k] - model["standardization"]["mean"][k].get<double>()) / sd;
        z[c] += model["layers"][0]["weights"][c][k].get<double>() * xs;
      }
    }
    const double mx = std::max({z[0], z[1], z[2]});
    double sum = 0;
    for (auto& v : z) sum += (v = std::exp(v - mx));
    int best = 0;
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(m["probabilities"][std::string(1, "abc"[c])].get<double>(), z[c] / sum, 1e-5);
      if (z[c] > z[best]) best = c;
    }
    EXPECT_EQ(m["predicted"], json::array({std::string(1, "abc"[best])}));
  }
}

// The entries read a project's labeled and unlabeled items by their own index ranges and
// merge them in item order: with another project's items between its own, and labeled
// and unlabeled items interleaved, every entry still lists exactly this project's items,
// in item order, each with its own state.
TEST_F(DlManagerE2E, EntriesListOnlyTheProjectsItemsInItemOrderWhateverTheirMix) {
  auto seeded = fixture_->Seed({.items = 30, .labeled = 10});
  fixture_->Seed({.name = "other", .items = 20, .labeled = 5});
  std::map<int64_t, bool> labeled;  // item → labeled, for the exported project
  std::map<int64_t, int> labels;    // item → label rows
  fixture_->pool().Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto p = seeded.project_id;
    // Three more items after the other project's; labeled and unlabeled interleaved.
    tx.exec_params(
        "INSERT INTO labeling.items (project_id, external_id, features) SELECT $1, 'late-' || g, "
        "'{0.5,0.25,0,1}' FROM generate_series(1, 3) g",
        p);
    tx.exec_params(
        "UPDATE labeling.items SET status = 'unlabeled', judgements = 0, consensus = NULL "
        "WHERE project_id = $1 AND external_id IN ('ext-2', 'ext-5')",
        p);
    tx.exec_params(
        "UPDATE labeling.items SET status = 'labeled', judgements = 1, consensus = '{b}' "
        "WHERE project_id = $1 AND external_id IN ('ext-14', 'ext-22', 'late-2')",
        p);
    for (const auto& row : tx.exec_params(
             "SELECT id, status = 'labeled' FROM labeling.items WHERE project_id = $1", p)) {
      labeled[row[0].as<int64_t>()] = row[1].as<bool>();
    }
    for (const auto& row : tx.exec_params(
             "SELECT item_id, count(*) FROM labeling.labels WHERE project_id = $1 GROUP BY 1", p)) {
      labels[row[0].as<int64_t>()] = row[1].as<int>();
    }
    tx.commit();
    return 0;
  });
  ASSERT_EQ(labeled.size(), 33u);

  auto svc = Start();
  auto stub = StubOf(*svc);
  v1::RequestDownloadResponse r;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &r).ok());
  auto d = WaitStatus(*stub, r.download().download_id(), v1::DOWNLOAD_STATUS_AVAILABLE);
  ASSERT_EQ(d.status(), v1::DOWNLOAD_STATUS_AVAILABLE) << d.message() << svc->Log();
  auto entries = OpenAndVerify(SaveArchive(*stub, d.download_id(), "mix.zip"));

  // timestamps.json: every item once per label (once when it has none), in item order.
  std::vector<int64_t> order;
  std::map<int64_t, int> records;
  for (const auto& t : json::parse(entries["timestamps.json"])) {
    const int64_t item = t["item_id"];
    if (order.empty() || order.back() != item) order.push_back(item);
    ++records[item];
    ASSERT_TRUE(labeled.count(item)) << "item " << item << " is not the project's";
    EXPECT_EQ(t["labeled"].get<bool>(), labeled.at(item)) << t;
    EXPECT_EQ(t["annotator"].is_null(), labels.count(item) == 0) << t;
  }
  std::vector<int64_t> want;
  for (const auto& [item, is_labeled] : labeled) want.push_back(item);
  EXPECT_EQ(order, want);
  for (const auto& [item, n] : records) EXPECT_EQ(n, std::max(1, labels[item])) << item;

  // human_labels.json and machine_labels.json: the labeled and the unlabeled items.
  std::vector<int64_t> human, machine, want_human, want_machine;
  for (const auto& h : json::parse(entries["human_labels.json"])) human.push_back(h["item_id"]);
  for (const auto& m : json::parse(entries["machine_labels.json"])) machine.push_back(m["item_id"]);
  for (const auto& [item, is_labeled] : labeled) {
    (is_labeled ? want_human : want_machine).push_back(item);
  }
  EXPECT_EQ(human, want_human);
  EXPECT_EQ(machine, want_machine);
}

TEST_F(DlManagerE2E, PandasReadsEveryJsonFileWithDefaultArguments) {
  if (labelloop::testing::Shell("/usr/bin/python3 -c 'import pandas' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-pandas is not installed";
  }
  auto seeded = fixture_->Seed({.items = 25, .labeled = 8});
  auto svc = Start();
  auto stub = StubOf(*svc);
  v1::RequestDownloadResponse r;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &r).ok());
  auto d = WaitStatus(*stub, r.download().download_id(), v1::DOWNLOAD_STATUS_AVAILABLE);
  ASSERT_EQ(d.status(), v1::DOWNLOAD_STATUS_AVAILABLE) << d.message();
  const std::string path = SaveArchive(*stub, d.download_id(), "p.zip");
  const std::string out = (dir_ / "x").string();
  ASSERT_EQ(labelloop::testing::Shell("unzip -qo " + path + " -d " + out), 0);
  const std::string script = (dir_ / "check.py").string();
  std::ofstream(script) << R"(import json, sys
import pandas as pd
d = sys.argv[1]
manifest = json.load(open(d + "/manifest.json"))
for name, spec in manifest["schema"].items():
    df = pd.read_json(d + "/" + name)
    assert list(df.columns) == spec["columns"], (name, list(df.columns), spec["columns"])
    assert len(df) == manifest["counts"][name], (name, len(df))
m = pd.read_json(d + "/machine_labels.json")
assert abs(sum(m.probabilities.iloc[0].values()) - 1) < 1e-5
h = pd.read_json(d + "/human_labels.json")
assert str(h.labeled_at.dtype).startswith("datetime64"), h.labeled_at.dtype
print("ok")
)";
  EXPECT_EQ(labelloop::testing::Shell("/usr/bin/python3 " + script + " " + out), 0);
}

TEST_F(DlManagerE2E, AMissingProjectOrModelIsNotFoundOrFailedWithAClearMessage) {
  auto seeded = fixture_->Seed({.items = 5, .labeled = 2});
  auto other = fixture_->Seed({.name = "other", .items = 5, .labeled = 2});
  auto svc = Start();
  auto stub = StubOf(*svc);
  v1::RequestDownloadResponse r;
  auto st = Request(*stub, 999, 0, &r);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "project 999 does not exist");
  st = Request(*stub, seeded.project_id, 999, &r);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "model 999 does not exist");
  st = Request(*stub, seeded.project_id, other.model_id, &r);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find("belongs to project"), std::string::npos);
  EXPECT_EQ(Request(*stub, -1, 0, &r).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A request that reaches a builder for a project that is gone (written directly, as
  // a replica of an older version or an operator might): FAILED at once, not retried.
  const int64_t id = fixture_->pool().Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto row = tx.exec(
        "INSERT INTO dl_manager.downloads (project_id, model_id, fingerprint) "
        "VALUES (999, 7, 'x') RETURNING id");
    tx.commit();
    return row[0][0].as<int64_t>();
  });
  auto d = WaitStatus(*stub, id, v1::DOWNLOAD_STATUS_FAILED);
  ASSERT_EQ(d.status(), v1::DOWNLOAD_STATUS_FAILED);
  EXPECT_EQ(d.message(), "project 999 does not exist");
  EXPECT_EQ(d.attempts(), 1);
  std::string none;
  EXPECT_EQ(Fetch(*stub, id, 0, &none).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(DlManagerE2E, ACorruptPredictionChunkFailsTheBuildWithAClearMessage) {
  auto seeded = fixture_->Seed({.items = 30, .labeled = 10});
  // The second chunk (7 rows × 3 classes × 4 bytes = 84) lost its last 4 bytes.
  fixture_->pool().Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "UPDATE training.prediction_chunks SET probabilities = "
        "substring(probabilities from 1 for 80) WHERE model_id = $1 AND chunk = 1",
        seeded.model_id);
    tx.commit();
    return 0;
  });
  auto svc = Start();
  auto stub = StubOf(*svc);
  v1::RequestDownloadResponse r;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &r).ok());
  auto d = WaitStatus(*stub, r.download().download_id(), v1::DOWNLOAD_STATUS_FAILED);
  ASSERT_EQ(d.status(), v1::DOWNLOAD_STATUS_FAILED) << d.message();
  EXPECT_EQ(d.message(), "stored predictions are corrupt: model " +
                             std::to_string(seeded.model_id) +
                             ", prediction chunk 1: probabilities has 80 bytes, row_count 7 × 3 "
                             "classes needs 84");
  EXPECT_EQ(d.attempts(), 1);
}

TEST_F(DlManagerE2E, ThreeReplicasBuildEachOfTwentyRequestsExactlyOnce) {
  std::vector<testing::Seeded> projects;
  for (int i = 0; i < 20; ++i) {
    projects.push_back(
        fixture_->Seed({.name = "p" + std::to_string(i), .items = 40, .labeled = 15}));
  }
  std::vector<std::unique_ptr<labelloop::testing::ServiceUnderTest>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(Start({"--workers", "2"}));
  std::vector<std::unique_ptr<Stub>> stubs;
  for (auto& r : replicas) stubs.push_back(StubOf(*r));

  // Every request is made twice, through two replicas at once: deduped to one download.
  std::vector<int64_t> ids(20), dup(20);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      v1::RequestDownloadResponse a;
      EXPECT_TRUE(Request(*stubs[i % 3], projects[i].project_id, 0, &a).ok());
      ids[i] = a.download().download_id();
    });
    threads.emplace_back([&, i] {
      v1::RequestDownloadResponse b;
      EXPECT_TRUE(Request(*stubs[(i + 1) % 3], projects[i].project_id, 0, &b).ok());
      dup[i] = b.download().download_id();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ids, dup);
  for (int i = 0; i < 20; ++i) {
    auto d = WaitStatus(*stubs[0], ids[i], v1::DOWNLOAD_STATUS_AVAILABLE);
    EXPECT_EQ(d.status(), v1::DOWNLOAD_STATUS_AVAILABLE) << d.message();
    EXPECT_EQ(d.entry_counts().at("human_labels.json"), 15);
  }
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.downloads"), 20);
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.builds"), 20);
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.builds WHERE outcome = 'AVAILABLE'"), 20);
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.downloads WHERE attempts <> 1"), 0);
  // Chunks exist only for the stored builds.
  EXPECT_EQ(Count("SELECT count(DISTINCT build_id) FROM dl_manager.archive_chunks"), 20);
  // Spot-check one archive fetched through another replica.
  OpenAndVerify(SaveArchive(*stubs[2], ids[7], "r.zip"));
}

TEST_F(DlManagerE2E, RequestsMadeWhileNoBuilderRunsAreBuiltWhenOneStarts) {
  std::vector<testing::Seeded> projects;
  for (int i = 0; i < 5; ++i) {
    projects.push_back(
        fixture_->Seed({.name = "q" + std::to_string(i), .items = 20, .labeled = 5}));
  }
  // An API-only replica takes the requests; their bus messages reach no builder.
  auto api = Start({"--workers", "0"});
  auto stub = StubOf(*api);
  std::vector<int64_t> ids;
  for (const auto& p : projects) {
    v1::RequestDownloadResponse r;
    ASSERT_TRUE(Request(*stub, p.project_id, p.model_id, &r).ok());
    ids.push_back(r.download().download_id());
  }
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.downloads WHERE status = 'REQUESTED'"), 5);
  // A builder whose sweep would come only after an hour: its start-up pass finds them.
  auto builder = Start({"--sweep-ms", "3600000"});
  for (int64_t id : ids) {
    auto d = WaitStatus(*stub, id, v1::DOWNLOAD_STATUS_AVAILABLE);
    EXPECT_EQ(d.status(), v1::DOWNLOAD_STATUS_AVAILABLE) << d.message() << builder->Log();
  }
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.builds"), 5);
}

// A project big enough that its build takes a moment (50,000 items, model applied).
testing::SeedOptions BigProject() {
  return {.name = "big",
          .items = 50000,
          .labeled = 10000,
          .predictions = false,
          .second_annotator_every = 1000000};
}

TEST_F(DlManagerE2E, SigkillMidBuildStillEndsAvailableWithAValidArchive) {
  auto seeded = fixture_->Seed(BigProject());
  auto svc = Start();
  auto stub = StubOf(*svc);
  v1::RequestDownloadResponse r;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &r).ok());
  const int64_t id = r.download().download_id();
  const std::string building_sql =
      "SELECT count(*) FROM dl_manager.downloads WHERE status = 'BUILDING' AND id = " +
      std::to_string(id);
  ASSERT_TRUE(labelloop::testing::WaitFor([&] { return Count(building_sql) == 1; }, seconds(30)));
  svc->process().Signal(SIGKILL);
  ASSERT_TRUE(svc->process().Wait(seconds(10)).has_value());
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.downloads WHERE status = 'AVAILABLE'"), 0);

  svc->Restart();  // a new process (a new worker id): it waits for the lease to expire
  ASSERT_TRUE(svc->WaitServing(seconds(30)));
  auto d = WaitStatus(*stub, id, v1::DOWNLOAD_STATUS_AVAILABLE, seconds(180));
  ASSERT_EQ(d.status(), v1::DOWNLOAD_STATUS_AVAILABLE) << d.message() << svc->Log();
  EXPECT_EQ(d.attempts(), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.builds WHERE outcome = 'LOST'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.builds WHERE outcome = 'AVAILABLE'"), 1);
  EXPECT_EQ(d.entry_counts().at("human_labels.json"), 10000);
  EXPECT_EQ(d.entry_counts().at("machine_labels.json"), 40000);
  EXPECT_EQ(d.entry_counts().at("timestamps.json"), 50000);
  std::string bytes;
  ASSERT_TRUE(Fetch(*stub, id, 0, &bytes).ok());
  EXPECT_EQ(Sha256::Of(bytes), d.sha256());
  const std::string path = (dir_ / "k.zip").string();
  std::ofstream(path, std::ios::binary) << bytes;
  OpenAndVerify(path);
}

TEST_F(DlManagerE2E, SigtermMidBuildGivesTheClaimBackAndExitsZero) {
  auto seeded = fixture_->Seed(BigProject());
  auto svc = Start({"--lease-ms", "600000"});  // a released claim must not wait for expiry
  auto stub = StubOf(*svc);
  v1::RequestDownloadResponse r;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &r).ok());
  const int64_t id = r.download().download_id();
  ASSERT_TRUE(labelloop::testing::WaitFor(
      [&] {
        return Count("SELECT count(*) FROM dl_manager.downloads WHERE status = 'BUILDING'") == 1;
      },
      seconds(30)));
  auto code = svc->Stop(seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << svc->Log();
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.downloads WHERE status = 'REQUESTED' AND "
                  "attempts = 0 AND claimed_by IS NULL"),
            1)
      << svc->Log();
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.builds WHERE outcome = 'RELEASED'"), 1);

  svc->Restart();
  ASSERT_TRUE(svc->WaitServing(seconds(30)));
  auto d = WaitStatus(*stub, id, v1::DOWNLOAD_STATUS_AVAILABLE, seconds(180));
  ASSERT_EQ(d.status(), v1::DOWNLOAD_STATUS_AVAILABLE) << d.message();
  EXPECT_EQ(d.attempts(), 1);
}

TEST_F(DlManagerE2E, RetentionDeletesOldArchives) {
  auto seeded = fixture_->Seed({.items = 10, .labeled = 3});
  auto svc = Start({"--retention-seconds", "86400"});
  auto stub = StubOf(*svc);
  v1::RequestDownloadResponse r;
  ASSERT_TRUE(Request(*stub, seeded.project_id, seeded.model_id, &r).ok());
  const int64_t id = r.download().download_id();
  ASSERT_EQ(WaitStatus(*stub, id, v1::DOWNLOAD_STATUS_AVAILABLE).status(),
            v1::DOWNLOAD_STATUS_AVAILABLE);
  fixture_->pool().Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "UPDATE dl_manager.downloads SET finished_at = now() - interval '2 days' "
        "WHERE id = $1",
        id);
    tx.commit();
  });
  EXPECT_TRUE(
      labelloop::testing::WaitFor([&] { return !Get(*stub, id).has_value(); }, seconds(30)));
  EXPECT_EQ(Count("SELECT count(*) FROM dl_manager.archive_chunks"), 0);
}

}  // namespace
}  // namespace labelloop::dl_manager
