#include "tests/e2e/labeling/labeling_harness.hpp"

namespace labelloop::e2e {

bool LabelingHarness::Start(const std::vector<std::string>& extra_args) {
  auto url = testing::AdminPgUrl();
  auto redis = testing::TestRedis();
  if (!url || !redis) return false;
  db_ = std::make_unique<testing::TempDatabase>(*url);
  redis_ = *redis;
  std::vector<std::string> args = {"--pg-pool-size", "16"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  service_ =
      std::make_unique<testing::ServiceUnderTest>("labelloop-labeling", db_->url(), redis_, args);
  EXPECT_TRUE(service_->WaitServing(std::chrono::seconds(30))) << service_->Log();
  stub_ = NewStub();
  return true;
}

std::unique_ptr<v1::LabelingService::Stub> LabelingHarness::NewStub() const {
  // A channel of its own per stub (distinct channel args avoid subchannel sharing).
  grpc::ChannelArguments args;
  static std::atomic<int> n{0};
  args.SetInt("labelloop.test.channel", n++);
  auto channel =
      grpc::CreateCustomChannel(service_->address(), grpc::InsecureChannelCredentials(), args);
  // Connected before use: with 32 annotators connecting at once a first call could
  // otherwise fail on a refused connection attempt, which is not what these tests test.
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return v1::LabelingService::NewStub(channel);
}

v1::Project LabelingHarness::CreateProject(const std::vector<std::string>& classes,
                                           const std::string& kind, int judgements,
                                           const std::string& name) {
  v1::CreateProjectRequest req;
  req.set_name(name);
  req.set_data_kind("text");
  req.mutable_schema()->set_kind(kind);
  for (const auto& c : classes) req.mutable_schema()->add_classes(c);
  req.set_judgements_per_item(judgements);
  grpc::ClientContext ctx;
  v1::Project p;
  auto st = stub_->CreateProject(&ctx, req, &p);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return p;
}

std::vector<int64_t> LabelingHarness::InsertItems(int64_t project_id, int n) {
  pqxx::connection c(db_->url());
  pqxx::work tx(c);
  auto r = tx.exec_params(
      "INSERT INTO labeling.items (project_id, external_id, text_payload, features) "
      "SELECT $1, 'ext-' || g, 'text ' || g, ARRAY[g::real, 1] "
      "FROM generate_series((SELECT count(*) FROM labeling.items WHERE project_id = $1) + 1, "
      "(SELECT count(*) FROM labeling.items WHERE project_id = $1) + $2) g RETURNING id",
      project_id, n);
  tx.commit();
  std::vector<int64_t> ids;
  for (const auto& row : r) ids.push_back(row[0].as<int64_t>());
  std::sort(ids.begin(), ids.end());
  return ids;
}

int64_t LabelingHarness::Count(const std::string& sql) {
  pqxx::connection c(db_->url());
  pqxx::nontransaction tx(c);
  return tx.exec(sql)[0][0].as<int64_t>();
}

void ExpectEveryItemLabeledOnce(LabelingHarness& h, int64_t project_id, int items) {
  const std::string p = std::to_string(project_id);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.labels WHERE project_id = " + p), items);
  EXPECT_EQ(h.Count("SELECT count(DISTINCT item_id) FROM labeling.labels WHERE project_id = " + p),
            items);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.items WHERE status = 'labeled' AND "
                    "judgements = 1 AND project_id = " +
                    p),
            items);
  EXPECT_EQ(h.Count("SELECT sum(labeled) FROM labeling.label_counts WHERE project_id = " + p),
            items);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.labels l WHERE project_id = " + p +
                    " AND classes <> ARRAY[(ARRAY['cat','dog','bird'])[l.item_id % 3 + 1]]"),
            0);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history a JOIN labeling.lease_history b "
                    "ON a.item_id = b.item_id AND a.id < b.id WHERE a.project_id = " +
                    p +
                    " AND tstzrange(a.claimed_at, coalesce(a.ended_at, a.expires_at)) && "
                    "tstzrange(b.claimed_at, coalesce(b.ended_at, b.expires_at))"),
            0);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE outcome IS DISTINCT FROM "
                    "'submitted' AND project_id = " +
                    p),
            0);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.lease_history WHERE project_id = " + p), items);
  EXPECT_EQ(h.Count("SELECT count(*) FROM labeling.leases WHERE project_id = " + p), 0);
}

grpc::Status Claim(v1::LabelingService::Stub& stub, int64_t project, const std::string& who, int n,
                   v1::ClaimNextResponse* out) {
  v1::ClaimNextRequest req;
  req.set_project_id(project);
  req.set_annotator(who);
  req.set_n(n);
  grpc::ClientContext ctx;
  out->Clear();
  return stub.ClaimNext(&ctx, req, out);
}

grpc::Status Submit(v1::LabelingService::Stub& stub, const v1::Lease& lease,
                    const std::vector<std::string>& classes, v1::SubmitLabelResponse* out,
                    double seconds) {
  v1::SubmitLabelRequest req;
  req.set_item_id(lease.item_id());
  req.set_lease_token(lease.token());
  for (const auto& c : classes) req.add_classes(c);
  req.set_seconds_spent(seconds);
  grpc::ClientContext ctx;
  v1::SubmitLabelResponse local;
  return stub.SubmitLabel(&ctx, req, out != nullptr ? out : &local);
}

}  // namespace labelloop::e2e
