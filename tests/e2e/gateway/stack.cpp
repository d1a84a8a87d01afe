#include "tests/e2e/gateway/stack.hpp"

#include <gtest/gtest.h>

#include "labelloop/v1/labeling.grpc.pb.h"

namespace labelloop::gwtest {

using std::chrono::seconds;

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token, int secs) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(secs));
  return ctx;
}

int64_t CreateTabularProject(const std::shared_ptr<grpc::Channel>& channel,
                             const std::string& token, const std::string& name) {
  auto lab = v1::LabelingService::NewStub(channel);
  v1::CreateProjectRequest cp;
  cp.set_name(name);
  cp.set_data_kind("tabular");
  cp.mutable_schema()->set_kind("single");
  cp.mutable_schema()->add_classes("pos");
  cp.mutable_schema()->add_classes("neg");
  v1::Project p;
  auto ctx = Ctx(token);
  auto s = lab->CreateProject(ctx.get(), cp, &p);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return p.id();
}

v1::UploadRequest CsvUploadHeader(int64_t project) {
  v1::UploadRequest head;
  head.mutable_header()->set_project_id(project);
  head.mutable_header()->set_format(v1::UPLOAD_FORMAT_CSV);
  head.mutable_header()->mutable_mapping()->set_external_id_column("id");
  head.mutable_header()->mutable_mapping()->add_feature_columns("x1");
  head.mutable_header()->mutable_mapping()->add_feature_columns("x2");
  return head;
}

Stack::Stack(StackOptions options) {
  auto url = testing::AdminPgUrl();
  auto redis = testing::TestRedis();
  if (!url || !redis) {
    skipped_ = true;
    error_ = "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)";
    return;
  }
  db_ = std::make_unique<testing::TempDatabase>(*url);
  redis_ = *redis;
  auto start = [&](const std::string& name, const std::string& binary,
                   std::vector<std::string> args) {
    auto s = std::make_unique<testing::ServiceUnderTest>(binary, db_->url(), redis_, args);
    if (!s->WaitServing(seconds(60))) error_ += name + " did not start:\n" + s->Log() + "\n";
    services_[name] = std::move(s);
  };
  // Labeling first: its migrations create the views the others read.
  if (options.labeling) start("labeling", "labelloop-labeling", {});
  if (options.ranking) start("ranking", "labelloop-ranking", {});
  if (options.labeling && options.ranking) {
    // Labeling orders hand-outs through ranking: restart it pointed at this ranking.
    services_["labeling"].reset();
    start("labeling", "labelloop-labeling", {"--ranking-addr", services_["ranking"]->address()});
  }
  if (options.training) {
    start("training", "labelloop-training",
          {"--job-poll-ms", "200", "--watch-poll-ms", "50", "--min-labels-per-class", "3"});
  }
  if (options.dl_manager) start("dl_manager", "labelloop-dl-manager", {});
  http_port_ = testing::FreePort();
  auto addr = [&](const std::string& name) {
    auto it = services_.find(name);
    // A closed port when the service is not part of this stack.
    return it != services_.end() ? it->second->address()
                                 : "127.0.0.1:" + std::to_string(testing::FreePort());
  };
  std::vector<std::string> args = {
      "--http-host", "127.0.0.1", "--jwt-secret", kJwtSecret, "--bootstrap-admin-user", kAdmin,
      "--bootstrap-admin-password", kAdminPassword, "--labeling-addr", addr("labeling"),
      "--ranking-addr", addr("ranking"), "--training-addr", addr("training"), "--dl-manager-addr",
      addr("dl_manager"), "--internal-deadline-ms", "3000", "--auth-cache-ms", "0",
      "--cors-origins", "https://ui.example",
      // Stacks share the test Redis: keep their limits apart.
      "--redis-key-prefix", "test:" + db_->name() + ":"};
  args.insert(args.end(), options.gateway_args.begin(), options.gateway_args.end());
  gateway_args_ = args;
  args.insert(args.end(), {"--http-port", std::to_string(http_port_)});
  gateway_ =
      std::make_unique<testing::ServiceUnderTest>("labelloop-gateway", db_->url(), redis_, args);
  if (!gateway_->WaitServing(seconds(60))) {
    error_ += "gateway did not start:\n" + gateway_->Log() + "\n";
  }
  channel_ = gateway_->Channel();
}

Stack::~Stack() = default;

std::unique_ptr<testing::ServiceUnderTest> Stack::AnotherGateway() {
  auto args = gateway_args_;
  args.insert(args.end(), {"--http-port", std::to_string(testing::FreePort())});
  auto replica =
      std::make_unique<testing::ServiceUnderTest>("labelloop-gateway", db_->url(), redis_, args);
  if (!replica->WaitServing(seconds(60))) {
    ADD_FAILURE() << "second gateway did not start:\n" << replica->Log();
    return nullptr;
  }
  return replica;
}

testing::ServiceUnderTest* Stack::service(const std::string& name) {
  auto it = services_.find(name);
  return it == services_.end() ? nullptr : it->second.get();
}

httplib::Client Stack::Http() const {
  httplib::Client c("127.0.0.1", http_port_);
  c.set_read_timeout(30, 0);
  return c;
}

const std::string& Stack::pg_url() const { return db_->url(); }

std::string Stack::Login(const std::string& user, const std::string& password) {
  auto stub = Gateway();
  v1::LoginRequest req;
  req.set_username(user);
  req.set_password(password);
  v1::LoginResponse resp;
  auto ctx = Ctx("");
  auto s = stub->Login(ctx.get(), req, &resp);
  EXPECT_TRUE(s.ok()) << user << ": " << s.error_message();
  return resp.access_token();
}

std::string Stack::AdminToken() {
  if (admin_token_.empty()) admin_token_ = Login(kAdmin, kAdminPassword);
  return admin_token_;
}

std::string Stack::NewUser(const std::string& name, v1::Role role, int64_t* id) {
  auto stub = Gateway();
  v1::CreateUserRequest req;
  req.set_username(name);
  req.set_password(name + "-password");
  req.set_role(role);
  v1::User u;
  auto ctx = Ctx(AdminToken());
  auto s = stub->CreateUser(ctx.get(), req, &u);
  EXPECT_TRUE(s.ok()) << s.error_message();
  if (id != nullptr) *id = u.id();
  return Login(name, name + "-password");
}

void Stack::AddMember(int64_t project, int64_t user_id, v1::Role role) {
  auto stub = Gateway();
  v1::AddMemberRequest req;
  req.set_project_id(project);
  req.set_user_id(user_id);
  req.set_role(role);
  v1::Member m;
  auto ctx = Ctx(AdminToken());
  auto s = stub->AddMember(ctx.get(), req, &m);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

}  // namespace labelloop::gwtest
