// The whole active-learning loop through the gateway only — over gRPC with the services'
// own stubs pointed at the gateway, and again over HTTP/JSON — and the authorization
// matrix: every exposed RPC × every role × own/other project.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "labelloop/v1/dl_manager.grpc.pb.h"
#include "labelloop/v1/labeling.grpc.pb.h"
#include "labelloop/v1/labeling_ingest.grpc.pb.h"
#include "labelloop/v1/ranking.grpc.pb.h"
#include "labelloop/v1/training.grpc.pb.h"
#include "tests/e2e/gateway/stack.hpp"

namespace labelloop::gwtest {
namespace {

using grpc::StatusCode;
using std::chrono::seconds;

// 60 tabular items in two well separated classes: "pos" when x1 > 0.
std::string Csv(int n = 60) {
  std::string csv = "id,x1,x2\n";
  for (int i = 0; i < n; ++i) {
    const double x1 = (i % 2 == 0 ? 1.0 : -1.0) * (1.0 + (i % 7) * 0.1);
    const double x2 = (i % 5) * 0.2 - 0.4;
    csv += "r" + std::to_string(i) + "," + std::to_string(x1) + "," + std::to_string(x2) + "\n";
  }
  return csv;
}

std::string ClassOf(const std::string& external_id) {
  return std::stoi(external_id.substr(1)) % 2 == 0 ? "pos" : "neg";
}

// Collects WatchProject events on a thread until cancelled.
class EventCollector {
 public:
  EventCollector(std::shared_ptr<grpc::Channel> channel, const std::string& token,
                 int64_t project) {
    stub_ = v1::GatewayService::NewStub(channel);
    ctx_.AddMetadata("authorization", "Bearer " + token);
    v1::WatchProjectRequest req;
    req.set_project_id(project);
    reader_ = stub_->WatchProject(&ctx_, req);
    reader_->WaitForInitialMetadata();
    thread_ = std::thread([this] {
      v1::ProjectEvent ev;
      while (reader_->Read(&ev)) {
        std::lock_guard lock(mu_);
        types_.insert(ev.type());
      }
    });
  }
  ~EventCollector() {
    ctx_.TryCancel();
    thread_.join();
    (void)reader_->Finish();
  }
  bool Saw(const std::string& type) {
    std::lock_guard lock(mu_);
    return types_.count(type) > 0;
  }

 private:
  std::unique_ptr<v1::GatewayService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::ProjectEvent>> reader_;
  std::thread thread_;
  std::mutex mu_;
  std::set<std::string> types_;
};

class GatewayLoopE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack({.labeling = true,
                        .ranking = true,
                        .training = true,
                        .dl_manager = true,
                        .gateway_args = {}});
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override {
    if (stack_->skipped()) GTEST_SKIP() << stack_->error();
    ASSERT_TRUE(stack_->error().empty()) << stack_->error();
    ch_ = stack_->channel();
  }

  // As `token`: a tabular project with the CSV uploaded; returns its id.
  int64_t CreateProjectWithItems(const std::string& token, const std::string& name) {
    const int64_t project = CreateTabularProject(ch_, token, name);
    auto ingest = v1::LabelingIngestService::NewStub(ch_);
    v1::UploadResponse ur;
    auto c2 = Ctx(token);
    auto w = ingest->Upload(c2.get(), &ur);
    EXPECT_TRUE(w->Write(CsvUploadHeader(project)));
    const std::string csv = Csv();
    // Two chunks, to go through the client stream for real.
    for (size_t off = 0; off < csv.size(); off += csv.size() / 2 + 1) {
      v1::UploadRequest chunk;
      chunk.set_chunk(csv.substr(off, csv.size() / 2 + 1));
      EXPECT_TRUE(w->Write(chunk));
    }
    w->WritesDone();
    auto s = w->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(ur.items_inserted(), 60);
    return project;
  }

  // As `token`: claims and labels `n` items correctly; returns the claim order reported.
  std::string LabelItems(const std::string& token, int64_t project, int n) {
    auto lab = v1::LabelingService::NewStub(ch_);
    std::string order;
    int done = 0;
    while (done < n) {
      v1::ClaimNextRequest cr;
      cr.set_project_id(project);
      cr.set_n(std::min(10, n - done));
      cr.set_with_payload(true);
      v1::ClaimNextResponse claimed;
      auto c = Ctx(token);
      auto s = lab->ClaimNext(c.get(), cr, &claimed);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok() || claimed.items_size() == 0) break;
      if (order.empty()) order = claimed.order();
      for (const auto& it : claimed.items()) {
        v1::SubmitLabelRequest sr;
        sr.set_item_id(it.lease().item_id());
        sr.set_lease_token(it.lease().token());
        sr.add_classes(ClassOf(it.item().external_id()));
        sr.set_seconds_spent(1.5);
        v1::SubmitLabelResponse resp;
        auto c2 = Ctx(token);
        s = lab->SubmitLabel(c2.get(), sr, &resp);
        EXPECT_TRUE(s.ok()) << s.error_message();
        ++done;
      }
    }
    return order;
  }

  // Trains and follows the job through WatchTraining; returns the job id.
  int64_t TrainAndWatch(const std::string& token, int64_t project, int* epochs_seen) {
    auto tr = v1::TrainingService::NewStub(ch_);
    v1::StartTrainingRequest st;
    st.set_project_id(project);
    st.mutable_spec()->set_epochs(5);
    v1::StartTrainingResponse sr;
    auto c = Ctx(token);
    auto s = tr->StartTraining(c.get(), st, &sr);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::WatchTrainingRequest wr;
    wr.set_job_id(sr.job_id());
    auto cw = Ctx(token, 120);
    auto reader = tr->WatchTraining(cw.get(), wr);
    v1::TrainingProgress p;
    v1::TrainingJobState last = v1::TRAINING_JOB_STATE_UNSPECIFIED;
    while (reader->Read(&p)) {
      if (p.has_epoch_metrics()) ++*epochs_seen;
      last = p.state();
    }
    s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(last, v1::TRAINING_JOB_STATE_SUCCEEDED);
    return sr.job_id();
  }

  bool HasOrder(const std::string& token, int64_t project) {
    auto rk = v1::RankingService::NewStub(ch_);
    v1::RankInfoRequest req;
    req.set_project_id(project);
    v1::RankInfoResponse r;
    auto c = Ctx(token);
    return rk->RankInfo(c.get(), req, &r).ok() && r.has_order();
  }

  // Requests an archive, waits until it is built, fetches it; returns its bytes.
  std::string Download(const std::string& token, int64_t project, int64_t* download_id) {
    auto dl = v1::DlManagerService::NewStub(ch_);
    v1::RequestDownloadRequest rq;
    rq.set_project_id(project);
    v1::RequestDownloadResponse rr;
    auto c = Ctx(token);
    auto s = dl->RequestDownload(c.get(), rq, &rr);
    EXPECT_TRUE(s.ok()) << s.error_message();
    *download_id = rr.download().download_id();
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          v1::GetDownloadRequest g;
          g.set_download_id(*download_id);
          v1::Download d;
          auto cg = Ctx(token);
          return dl->GetDownload(cg.get(), g, &d).ok() &&
                 d.status() == v1::DOWNLOAD_STATUS_AVAILABLE;
        },
        seconds(60)));
    v1::FetchArchiveRequest fr;
    fr.set_download_id(*download_id);
    auto cf = Ctx(token, 60);
    auto reader = dl->FetchArchive(cf.get(), fr);
    v1::ArchiveChunk chunk;
    std::string bytes;
    int64_t total = -1;
    while (reader->Read(&chunk)) {
      bytes += chunk.data();
      total = chunk.total_size();
    }
    s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(static_cast<int64_t>(bytes.size()), total);
    return bytes;
  }

  static Stack* stack_;
  std::shared_ptr<grpc::Channel> ch_;
};

Stack* GatewayLoopE2E::stack_ = nullptr;

TEST_F(GatewayLoopE2E, ActiveLearningLoopOverGrpc) {
  int64_t manager_id = 0, annotator_id = 0;
  const auto manager = stack_->NewUser("loop-manager", v1::ROLE_MANAGER, &manager_id);
  const auto annotator = stack_->NewUser("loop-annotator", v1::ROLE_ANNOTATOR, &annotator_id);
  const int64_t project = CreateProjectWithItems(manager, "loop-grpc");
  ASSERT_GT(project, 0);
  // The manager owns the project and adds the annotator.
  {
    auto gw = stack_->Gateway();
    v1::AddMemberRequest am;
    am.set_project_id(project);
    am.set_username("loop-annotator");
    am.set_role(v1::ROLE_ANNOTATOR);
    v1::Member m;
    auto c = Ctx(manager);
    ASSERT_TRUE(gw->AddMember(c.get(), am, &m).ok());
  }
  EventCollector events(ch_, manager, project);
  const std::string first_order = LabelItems(annotator, project, 20);
  EXPECT_EQ(first_order, "oldest_first");
  int epochs_seen = 0;
  TrainAndWatch(manager, project, &epochs_seen);
  EXPECT_GT(epochs_seen, 0);
  // Ranking rebuilds the order from the new model's predictions: claims follow it now.
  ASSERT_TRUE(testing::WaitFor([&] { return HasOrder(annotator, project); }, seconds(60)));
  EXPECT_EQ(LabelItems(annotator, project, 2), "ranking");
  int64_t download_id = 0;
  const std::string zip = Download(manager, project, &download_id);
  ASSERT_GE(zip.size(), 4u);
  EXPECT_EQ(zip.substr(0, 4), std::string("PK\x03\x04", 4));
  EXPECT_TRUE(testing::WaitFor([&] { return events.Saw("labels.submitted"); }, seconds(10)));
  EXPECT_TRUE(testing::WaitFor([&] { return events.Saw("training.progress"); }, seconds(10)));
  EXPECT_TRUE(testing::WaitFor([&] { return events.Saw("models.ready"); }, seconds(10)));
  EXPECT_TRUE(testing::WaitFor([&] { return events.Saw("downloads.ready"); }, seconds(10)));
  // The annotator labels but does not download; a stranger does not even see the project.
  auto dl = v1::DlManagerService::NewStub(ch_);
  v1::RequestDownloadRequest rq;
  rq.set_project_id(project);
  v1::RequestDownloadResponse rr;
  auto c1 = Ctx(annotator);
  EXPECT_EQ(dl->RequestDownload(c1.get(), rq, &rr).error_code(), StatusCode::PERMISSION_DENIED);
  const auto stranger = stack_->NewUser("loop-stranger", v1::ROLE_ANNOTATOR);
  auto lab = v1::LabelingService::NewStub(ch_);
  v1::GetProjectRequest gp;
  gp.set_project_id(project);
  v1::Project p;
  auto c2 = Ctx(stranger);
  auto s = lab->GetProject(c2.get(), gp, &p);
  EXPECT_EQ(s.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "project " + std::to_string(project) + " not found");
  v1::ListProjectsResponse lp;
  auto c3 = Ctx(stranger);
  ASSERT_TRUE(lab->ListProjects(c3.get(), {}, &lp).ok());
  for (const auto& pr : lp.projects()) EXPECT_NE(pr.id(), project);
}

// --- HTTP/JSON -------------------------------------------------------------------------

nlohmann::json PostJson(httplib::Client& http, const std::string& token, const std::string& path,
                        const nlohmann::json& body, int expect = 200) {
  httplib::Headers h = {{"authorization", "Bearer " + token}};
  auto res = http.Post(path.c_str(), h, body.dump(), "application/json");
  EXPECT_TRUE(res) << path;
  if (!res) return {};
  EXPECT_EQ(res->status, expect) << path << ": " << res->body;
  return nlohmann::json::parse(res->body, nullptr, false);
}

// Reads an SSE response; returns the `data:` payloads (stops at `event: end|error`).
std::vector<std::string> ReadSse(httplib::Client& http, const std::string& token,
                                 const std::string& path, const std::string& body) {
  std::vector<std::string> data;
  std::string buf;
  httplib::Headers h = {{"authorization", "Bearer " + token}};
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = h;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    buf.append(d, n);
    size_t pos;
    while ((pos = buf.find("\n\n")) != std::string::npos) {
      const std::string ev = buf.substr(0, pos);
      buf.erase(0, pos + 2);
      if (ev.rfind("data: ", 0) == 0) data.push_back(ev.substr(6));
      if (ev.rfind("event: ", 0) == 0) data.push_back(ev);
    }
    return true;
  };
  auto res = http.send(req);
  EXPECT_TRUE(res) << path;
  return data;
}

TEST_F(GatewayLoopE2E, ActiveLearningLoopOverHttp) {
  stack_->NewUser("http-manager", v1::ROLE_MANAGER);
  auto http = stack_->Http();
  auto login = PostJson(http, "", "/v1/GatewayService/Login",
                        {{"username", "http-manager"}, {"password", "http-manager-password"}});
  const std::string token = login["accessToken"];
  auto project = PostJson(http, token, "/v1/LabelingService/CreateProject",
                          {{"name", "loop-http"},
                           {"dataKind", "tabular"},
                           {"schema", {{"kind", "single"}, {"classes", {"pos", "neg"}}}}});
  const int64_t pid = std::stoll(project["id"].get<std::string>());
  // Upload: the header message as JSON in a header, the file as the body.
  nlohmann::json first = {
      {"header",
       {{"projectId", pid},
        {"format", "UPLOAD_FORMAT_CSV"},
        {"mapping", {{"externalIdColumn", "id"}, {"featureColumns", {"x1", "x2"}}}}}}};
  httplib::Headers h = {{"authorization", "Bearer " + token},
                        {"x-labelloop-first-message", first.dump()}};
  auto res = http.Post("/v1/LabelingIngestService/Upload", h, Csv(), "text/csv");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(nlohmann::json::parse(res->body)["itemsInserted"], "60");
  // Claim and label 20 items (the manager labels in their own project).
  int labeled = 0;
  std::string first_order;
  while (labeled < 20) {
    auto claimed = PostJson(http, token, "/v1/LabelingService/ClaimNext",
                            {{"projectId", pid}, {"n", 10}, {"withPayload", true}});
    if (first_order.empty()) first_order = claimed["order"].get<std::string>();
    ASSERT_FALSE(claimed["items"].empty());
    for (const auto& it : claimed["items"]) {
      PostJson(http, token, "/v1/LabelingService/SubmitLabel",
               {{"itemId", it["lease"]["itemId"]},
                {"leaseToken", it["lease"]["token"]},
                {"classes", {ClassOf(it["item"]["externalId"].get<std::string>())}}});
      ++labeled;
    }
  }
  EXPECT_EQ(first_order, "oldest_first");
  auto started = PostJson(http, token, "/v1/TrainingService/StartTraining",
                          {{"projectId", pid}, {"spec", {{"epochs", 4}}}});
  const std::string job = started["jobId"];
  // WatchTraining as Server-Sent Events.
  auto events = ReadSse(http, token, "/v1/TrainingService/WatchTraining",
                        nlohmann::json({{"jobId", job}}).dump());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().rfind("event: end", 0), 0u) << events.back();
  bool saw_epoch = false;
  for (const auto& e : events) saw_epoch = saw_epoch || e.find("epochMetrics") != std::string::npos;
  EXPECT_TRUE(saw_epoch);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto info = PostJson(http, token, "/v1/RankingService/RankInfo", {{"projectId", pid}});
        return info.value("hasOrder", false);
      },
      seconds(60)));
  auto after =
      PostJson(http, token, "/v1/LabelingService/ClaimNext", {{"projectId", pid}, {"n", 1}});
  EXPECT_EQ(after["order"], "ranking");
  auto dlr = PostJson(http, token, "/v1/DlManagerService/RequestDownload", {{"projectId", pid}});
  const std::string did = dlr["download"]["downloadId"];
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto d = PostJson(http, token, "/v1/DlManagerService/GetDownload", {{"downloadId", did}});
        return d.value("status", "") == "DOWNLOAD_STATUS_AVAILABLE";
      },
      seconds(60)));
  // The archive's bytes, raw.
  httplib::Headers auth = {{"authorization", "Bearer " + token}};
  res = http.Get(("/v1/DlManagerService/FetchArchive?raw=1&download_id=" + did).c_str(), auth);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  ASSERT_GE(res->body.size(), 4u);
  EXPECT_EQ(res->body.substr(0, 4), std::string("PK\x03\x04", 4));
}

// --- Authorization matrix ----------------------------------------------------------------

struct Objects {
  int64_t project = 0, item = 0, job = 0, model = 0, download = 0;
};

// Every exposed method with a request naming objects of a project ($P project, $I item,
// $J job, $M model, $D download) and who may call it: R any member, L any member (label),
// M project manager, C creator (manager role), A any signed-in user.
struct MatrixRow {
  const char* method;
  const char* request;
  char access;
};

const MatrixRow kMatrix[] = {
    {"LabelingService/GetProject", R"({"projectId":"$P"})", 'R'},
    {"LabelingService/GetStats", R"({"projectId":"$P"})", 'R'},
    {"LabelingService/ListItems", R"({"projectId":"$P"})", 'R'},
    {"LabelingService/GetItem", R"({"itemId":"$I"})", 'R'},
    {"LabelingService/ClaimNext", R"({"projectId":"$P","n":1})", 'L'},
    {"LabelingService/RenewLease", R"({"itemId":"$I","leaseToken":"x"})", 'L'},
    {"LabelingService/ReleaseLease", R"({"itemId":"$I","leaseToken":"x"})", 'L'},
    {"LabelingService/SubmitLabel", R"({"itemId":"$I","leaseToken":"x","classes":["pos"]})", 'L'},
    {"LabelingService/Skip", R"({"itemId":"$I","leaseToken":"x"})", 'L'},
    {"LabelingService/Relabel", R"({"itemId":"$I","classes":["zzz"]})", 'L'},
    {"LabelingIngestService/PushItem", R"({"projectId":"$P","externalId":"m","text":"x"})", 'M'},
    {"TrainingService/GetTrainingJob", R"({"jobId":"$J"})", 'R'},
    {"TrainingService/ListTrainingJobs", R"({"projectId":"$P"})", 'R'},
    {"TrainingService/WatchTraining", R"({"jobId":"$J"})", 'R'},
    {"TrainingService/GetRetrainPolicy", R"({"projectId":"$P"})", 'R'},
    {"TrainingService/ListModels", R"({"projectId":"$P"})", 'R'},
    {"TrainingService/GetModel", R"({"modelId":"$M"})", 'R'},
    {"TrainingService/Predict", R"({"modelId":"$M","itemIds":["$I"]})", 'M'},
    {"TrainingService/SetRetrainPolicy", R"({"projectId":"$P"})", 'M'},
    {"TrainingService/StartTraining", R"({"projectId":"$P","spec":{"epochs":-5}})", 'M'},
    {"RankingService/GetScores", R"({"projectId":"$P","itemIds":["$I"]})", 'R'},
    {"RankingService/Distribution", R"({"projectId":"$P"})", 'R'},
    {"RankingService/RankInfo", R"({"projectId":"$P"})", 'R'},
    {"RankingService/SetStrategy", R"({"projectId":"$P","strategy":"no-such-strategy"})", 'M'},
    {"RankingService/ScoreProbabilities", R"({"strategy":"entropy"})", 'A'},
    {"DlManagerService/GetDownload", R"({"downloadId":"$D"})", 'M'},
    {"DlManagerService/ListDownloads", R"({"projectId":"$P"})", 'M'},
    {"DlManagerService/FetchArchive", R"({"downloadId":"$D","offset":"999999999"})", 'M'},
    {"DlManagerService/RequestDownload", R"({"projectId":"$P"})", 'M'},
    {"LabelingService/UpdateProject", R"({"projectId":"$P"})", 'M'},
    {"TrainingService/CancelTraining", R"({"jobId":"$J"})", 'M'},
    {"DlManagerService/DeleteDownload", R"({"downloadId":"$D"})", 'M'},
    {"LabelingService/CompleteProject", R"({"projectId":"$P"})", 'M'},
    {"LabelingService/ArchiveProject", R"({"projectId":"$P"})", 'M'},
};

std::string Fill(std::string s, const Objects& o) {
  auto rep = [&](const std::string& from, int64_t v) {
    for (size_t pos; (pos = s.find(from)) != std::string::npos;) {
      s.replace(pos, from.size(), std::to_string(v));
    }
  };
  rep("$P", o.project);
  rep("$I", o.item);
  rep("$J", o.job);
  rep("$M", o.model);
  rep("$D", o.download);
  return s;
}

// Calls a method by name with a JSON request through the generic stub; returns the
// status and whether the gateway (not the service) refused it.
std::pair<grpc::Status, bool> Invoke(const std::shared_ptr<grpc::Channel>& ch,
                                     const std::string& token, const std::string& method,
                                     const std::string& json) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  std::string full = "labelloop.v1." + method;
  full[full.find('/')] = '.';
  const auto* m = pool->FindMethodByName(full);
  if (m == nullptr) return {grpc::Status(StatusCode::UNIMPLEMENTED, "no " + method), false};
  std::unique_ptr<google::protobuf::Message> req(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(m->input_type())->New());
  auto ps = google::protobuf::util::JsonStringToMessage(json, req.get());
  if (!ps.ok()) {
    return {grpc::Status(StatusCode::INTERNAL, "bad test JSON " + json), false};
  }
  grpc::GenericStub stub(ch);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  std::string bytes = req->SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer in(&slice, 1);
  grpc::ByteBuffer out;
  // Server streams too: the stream's first answer or its status is all we need.
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/labelloop.v1." + method, grpc::StubOptions(), &in, &out,
                 [&](grpc::Status s) { done.set_value(s); });
  grpc::Status status = done.get_future().get();
  auto it = ctx.GetServerTrailingMetadata().find("x-labelloop-refused-by");
  const bool refused = it != ctx.GetServerTrailingMetadata().end();
  return {status, refused};
}

TEST_F(GatewayLoopE2E, AuthorizationMatrixEveryRpcRoleAndProject) {
  int64_t owner_id = 0, other_manager_id = 0, member_id = 0, outsider_id = 0, manager_member_id = 0;
  const auto owner = stack_->NewUser("mx-owner", v1::ROLE_MANAGER, &owner_id);
  const auto other_manager =
      stack_->NewUser("mx-other-manager", v1::ROLE_MANAGER, &other_manager_id);
  const auto manager_as_annotator =
      stack_->NewUser("mx-manager-annotating", v1::ROLE_MANAGER, &manager_member_id);
  const auto member = stack_->NewUser("mx-annotator", v1::ROLE_ANNOTATOR, &member_id);
  const auto outsider = stack_->NewUser("mx-outsider", v1::ROLE_ANNOTATOR, &outsider_id);
  const auto admin = stack_->AdminToken();

  // Own project (A, owned by mx-owner) and another project (B, owned by mx-other-manager),
  // each with items, a trained model, a job and an archive.
  auto make = [&](const std::string& token, const std::string& name) {
    Objects o;
    o.project = CreateProjectWithItems(token, name);
    LabelItems(token, o.project, 12);
    int epochs = 0;
    o.job = TrainAndWatch(token, o.project, &epochs);
    auto tr = v1::TrainingService::NewStub(ch_);
    v1::ListModelsRequest lm;
    lm.set_project_id(o.project);
    v1::ListModelsResponse models;
    auto c = Ctx(token);
    EXPECT_TRUE(tr->ListModels(c.get(), lm, &models).ok());
    if (models.models_size() > 0) o.model = models.models(0).model_id();
    auto lab = v1::LabelingService::NewStub(ch_);
    v1::ListItemsRequest li;
    li.set_project_id(o.project);
    v1::ListItemsResponse items;
    auto c2 = Ctx(token);
    EXPECT_TRUE(lab->ListItems(c2.get(), li, &items).ok());
    if (items.items_size() > 0) o.item = items.items(0).id();
    Download(token, o.project, &o.download);
    return o;
  };
  const Objects own = make(owner, "matrix-own");
  const Objects other = make(other_manager, "matrix-other");
  ASSERT_GT(own.item, 0);
  ASSERT_GT(own.model, 0);
  ASSERT_GT(own.download, 0);
  stack_->AddMember(own.project, member_id, v1::ROLE_ANNOTATOR);
  stack_->AddMember(own.project, manager_member_id, v1::ROLE_ANNOTATOR);

  struct Caller {
    const char* name;
    std::string token;
    // Role within the own project: 'X' admin, 'M' manager, 'L' annotator, 0 none.
    char own_role;
  };
  const std::vector<Caller> callers = {{"admin", admin, 'X'},
                                       {"owner (manager)", owner, 'M'},
                                       {"manager, annotator member", manager_as_annotator, 'L'},
                                       {"annotator member", member, 'L'},
                                       {"annotator outsider", outsider, 0}};
  auto expected_allowed = [](char access, char role) {
    if (role == 'X') return true;
    switch (access) {
      case 'A':
        return true;
      case 'R':
      case 'L':
        return role != 0;
      case 'M':
        return role == 'M';
    }
    return false;
  };
  int checked = 0;
  for (const auto& row : kMatrix) {
    for (const auto& caller : callers) {
      for (bool own_project : {true, false}) {
        const Objects& o = own_project ? own : other;
        // In the other project only the admin has a role.
        const char role = own_project ? caller.own_role : (caller.own_role == 'X' ? 'X' : 0);
        const bool allowed = expected_allowed(row.access, role);
        auto [status, refused] = Invoke(ch_, caller.token, row.method, Fill(row.request, o));
        const std::string what = std::string(row.method) + " as " + caller.name + " in " +
                                 (own_project ? "own" : "other") + " project: " +
                                 std::to_string(static_cast<int>(status.error_code())) + " " +
                                 status.error_message();
        ASSERT_NE(status.error_code(), StatusCode::UNIMPLEMENTED) << what;
        if (allowed) {
          EXPECT_FALSE(refused) << "expected allowed: " << what;
        } else {
          EXPECT_TRUE(refused) << "expected denied: " << what;
          // Outsiders learn nothing (NOT_FOUND); members lacking the role are told so.
          EXPECT_EQ(status.error_code(),
                    role == 0 ? StatusCode::NOT_FOUND : StatusCode::PERMISSION_DENIED)
              << what;
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, static_cast<int>(std::size(kMatrix) * callers.size() * 2));

  // CreateProject: managers and admins; ListProjects: filtered to the caller's projects.
  auto lab = v1::LabelingService::NewStub(ch_);
  v1::CreateProjectRequest cp;
  cp.set_name("not-allowed");
  cp.set_data_kind("tabular");
  cp.mutable_schema()->set_kind("single");
  cp.mutable_schema()->add_classes("a");
  cp.mutable_schema()->add_classes("b");
  v1::Project p;
  auto c1 = Ctx(member);
  EXPECT_EQ(lab->CreateProject(c1.get(), cp, &p).error_code(), StatusCode::PERMISSION_DENIED);
  std::set<int64_t> seen;
  v1::ListProjectsRequest all_req;
  all_req.set_include_archived(true);  // the matrix archived the own project at its end
  v1::ListProjectsResponse lp;
  auto c2 = Ctx(member);
  ASSERT_TRUE(lab->ListProjects(c2.get(), all_req, &lp).ok());
  for (const auto& pr : lp.projects()) seen.insert(pr.id());
  EXPECT_EQ(seen, std::set<int64_t>({own.project}));
  v1::ListProjectsResponse all;
  auto c3 = Ctx(admin);
  ASSERT_TRUE(lab->ListProjects(c3.get(), all_req, &all).ok());
  EXPECT_GE(all.projects_size(), 2);
  // Uploading is a manager's business even in one's own project.
  auto ingest = v1::LabelingIngestService::NewStub(ch_);
  v1::UploadResponse ur;
  auto c4 = Ctx(member);
  auto w = ingest->Upload(c4.get(), &ur);
  v1::UploadRequest head;
  head.mutable_header()->set_project_id(own.project);
  head.mutable_header()->set_format(v1::UPLOAD_FORMAT_CSV);
  (void)w->Write(head);
  w->WritesDone();
  EXPECT_EQ(w->Finish().error_code(), StatusCode::PERMISSION_DENIED);
  // Membership management: the owner may, the annotator may not.
  auto gw = stack_->Gateway();
  v1::AddMemberRequest am;
  am.set_project_id(own.project);
  am.set_user_id(outsider_id);
  am.set_role(v1::ROLE_ANNOTATOR);
  v1::Member mem;
  auto c5 = Ctx(member);
  EXPECT_EQ(gw->AddMember(c5.get(), am, &mem).error_code(), StatusCode::PERMISSION_DENIED);
  am.set_project_id(other.project);
  auto c6 = Ctx(owner);
  EXPECT_EQ(gw->AddMember(c6.get(), am, &mem).error_code(), StatusCode::NOT_FOUND);
  (void)other_manager_id;
}

}  // namespace
}  // namespace labelloop::gwtest
