// The gateway's own behaviour with only labeling behind it: logins and tokens (tampered,
// expired, wrongly signed, refresh rotation), API keys, brute-force and per-user rate
// limits, internal RPCs hidden, an internal service stopped and back, and the HTTP/JSON
// mapping (status codes, error bodies, CORS, request ids).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

#include "labelloop/v1/labeling.grpc.pb.h"
#include "labelloop/v1/labeling_ingest.grpc.pb.h"
#include "labelloop/v1/ranking.grpc.pb.h"
#include "services/gateway/tokens.hpp"
#include "tests/e2e/gateway/stack.hpp"

namespace labelloop::gwtest {
namespace {

using grpc::StatusCode;
using std::chrono::seconds;

class GatewayAuthE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ =
        new Stack({.gateway_args = {"--login-attempts", "3", "--login-window-seconds", "300"}});
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override {
    if (stack_->skipped()) GTEST_SKIP() << stack_->error();
    ASSERT_TRUE(stack_->error().empty()) << stack_->error();
  }

  grpc::Status ListProjects(const std::string& token, v1::ListProjectsResponse* out = nullptr) {
    auto stub = v1::LabelingService::NewStub(stack_->channel());
    v1::ListProjectsResponse r;
    auto ctx = Ctx(token);
    return stub->ListProjects(ctx.get(), {}, out != nullptr ? out : &r);
  }

  static v1::UploadRequest UploadChunk(const std::string& csv) {
    v1::UploadRequest chunk;
    chunk.set_chunk(csv);
    return chunk;
  }

  static Stack* stack_;
};

Stack* GatewayAuthE2E::stack_ = nullptr;

TEST_F(GatewayAuthE2E, LoginGivesWorkingTokensAndWhoAmI) {
  auto stub = stack_->Gateway();
  v1::LoginRequest req;
  req.set_username(kAdmin);
  req.set_password(kAdminPassword);
  v1::LoginResponse resp;
  auto ctx = Ctx("");
  ASSERT_TRUE(stub->Login(ctx.get(), req, &resp).ok());
  EXPECT_FALSE(resp.access_token().empty());
  EXPECT_FALSE(resp.refresh_token().empty());
  EXPECT_GT(resp.access_expires_at().seconds(), std::time(nullptr));
  EXPECT_EQ(resp.user().role(), v1::ROLE_ADMIN);
  v1::User me;
  auto c2 = Ctx(resp.access_token());
  ASSERT_TRUE(stub->WhoAmI(c2.get(), {}, &me).ok());
  EXPECT_EQ(me.username(), kAdmin);
}

TEST_F(GatewayAuthE2E, WrongPasswordAndUnknownUserAreTheSameAnswer) {
  auto stub = stack_->Gateway();
  for (const auto& [user, pass] : std::vector<std::pair<std::string, std::string>>{
           {"nobody-here", "whatever-pass"}, {kAdmin, "wrong-password"}}) {
    v1::LoginRequest req;
    req.set_username(user);
    req.set_password(pass);
    v1::LoginResponse resp;
    auto ctx = Ctx("");
    auto s = stub->Login(ctx.get(), req, &resp);
    EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.error_message(), "wrong username or password");
  }
}

TEST_F(GatewayAuthE2E, MissingTamperedExpiredAndWronglySignedTokensAreRefused) {
  EXPECT_EQ(ListProjects("").error_code(), StatusCode::UNAUTHENTICATED);
  const std::string good = stack_->AdminToken();
  ASSERT_TRUE(ListProjects(good).ok());

  // Tampered: the payload claims another user; the signature no longer matches.
  gateway::TokenSigner signer(kJwtSecret, "labelloop");
  const auto now = static_cast<int64_t>(std::time(nullptr));
  auto forged_payload = signer.Issue({.user_id = 999,
                                      .username = "mallory",
                                      .role = gateway::Role::kAdmin,
                                      .issued_at = now,
                                      .expires_at = now + 600});
  const auto p1 = good.find('.');
  const auto p2 = good.find('.', p1 + 1);
  const auto f1 = forged_payload.find('.');
  const auto f2 = forged_payload.find('.', f1 + 1);
  const std::string tampered =
      good.substr(0, p1 + 1) + forged_payload.substr(f1 + 1, f2 - f1 - 1) + good.substr(p2);
  auto s = ListProjects(tampered);
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("signature"), std::string::npos) << s.error_message();

  // Expired: signed with the right key, expiry in the past.
  auto expired = signer.Issue({.user_id = 1,
                               .username = kAdmin,
                               .role = gateway::Role::kAdmin,
                               .issued_at = now - 1000,
                               .expires_at = now - 10});
  s = ListProjects(expired);
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("expired"), std::string::npos) << s.error_message();

  // Wrongly signed: a well-formed token from another key.
  gateway::TokenSigner other("some-other-secret-0123456789abcdef", "labelloop");
  auto foreign = other.Issue({.user_id = 1,
                              .username = kAdmin,
                              .role = gateway::Role::kAdmin,
                              .issued_at = now,
                              .expires_at = now + 600});
  s = ListProjects(foreign);
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("signature"), std::string::npos) << s.error_message();

  EXPECT_EQ(ListProjects("garbage").error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(GatewayAuthE2E, RefreshTokensRotateAndAReusedOneEndsTheSessions) {
  int64_t id = 0;
  stack_->NewUser("rotating-user", v1::ROLE_ANNOTATOR, &id);
  auto stub = stack_->Gateway();
  v1::LoginRequest lr;
  lr.set_username("rotating-user");
  lr.set_password("rotating-user-password");
  v1::LoginResponse first;
  auto c1 = Ctx("");
  ASSERT_TRUE(stub->Login(c1.get(), lr, &first).ok());
  v1::RefreshRequest rr;
  rr.set_refresh_token(first.refresh_token());
  v1::LoginResponse second;
  auto c2 = Ctx("");
  ASSERT_TRUE(stub->Refresh(c2.get(), rr, &second).ok());
  EXPECT_NE(second.refresh_token(), first.refresh_token());
  ASSERT_TRUE(ListProjects(second.access_token()).ok());
  // The spent token again: refused, and the newer one dies with it.
  v1::LoginResponse again;
  auto c3 = Ctx("");
  EXPECT_EQ(stub->Refresh(c3.get(), rr, &again).error_code(), StatusCode::UNAUTHENTICATED);
  v1::RefreshRequest rr2;
  rr2.set_refresh_token(second.refresh_token());
  auto c4 = Ctx("");
  EXPECT_EQ(stub->Refresh(c4.get(), rr2, &again).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(GatewayAuthE2E, BruteForceLoginHitsTheLimitEvenWithTheRightPassword) {
  stack_->NewUser("brute-target", v1::ROLE_ANNOTATOR);  // one successful login counted
  auto stub = stack_->Gateway();
  v1::LoginRequest req;
  req.set_username("brute-target");
  req.set_password("guess-guess");
  for (int i = 0; i < 2; ++i) {
    v1::LoginResponse r;
    auto ctx = Ctx("");
    EXPECT_EQ(stub->Login(ctx.get(), req, &r).error_code(), StatusCode::UNAUTHENTICATED);
  }
  req.set_password("brute-target-password");
  v1::LoginResponse r;
  grpc::ClientContext ctx;
  auto s = stub->Login(&ctx, req, &r);
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  auto it = ctx.GetServerTrailingMetadata().find("retry-after");
  ASSERT_NE(it, ctx.GetServerTrailingMetadata().end());
  EXPECT_GT(std::stoi(std::string(it->second.data(), it->second.size())), 0);
  // Over HTTP the same: 429 with Retry-After.
  auto http = stack_->Http();
  auto res = http.Post("/v1/GatewayService/Login",
                       R"({"username":"brute-target","password":"x-x-x-x-x"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_FALSE(res->get_header_value("Retry-After").empty());
  EXPECT_EQ(nlohmann::json::parse(res->body)["code"], "RESOURCE_EXHAUSTED");
}

TEST_F(GatewayAuthE2E, ApiKeysWorkUntilRevoked) {
  auto stub = stack_->Gateway();
  v1::CreateApiKeyRequest req;
  req.set_name("collector");
  v1::CreateApiKeyResponse created;
  auto c1 = Ctx(stack_->AdminToken());
  ASSERT_TRUE(stub->CreateApiKey(c1.get(), req, &created).ok());
  ASSERT_FALSE(created.key().empty());
  for (const auto& [header, value] : std::vector<std::pair<std::string, std::string>>{
           {"x-api-key", created.key()}, {"authorization", "ApiKey " + created.key()}}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(header, value);
    v1::User me;
    ASSERT_TRUE(stub->WhoAmI(&ctx, {}, &me).ok()) << header;
    EXPECT_EQ(me.api_key_id(), created.api_key().id());
  }
  v1::RevokeApiKeyRequest rv;
  rv.set_api_key_id(created.api_key().id());
  v1::RevokeApiKeyResponse rr;
  auto c2 = Ctx(stack_->AdminToken());
  ASSERT_TRUE(stub->RevokeApiKey(c2.get(), rv, &rr).ok());
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-api-key", created.key());
  v1::User me;
  EXPECT_EQ(stub->WhoAmI(&ctx, {}, &me).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(GatewayAuthE2E, OnlyAdminsManageUsers) {
  auto annotator = stack_->NewUser("plain-annotator", v1::ROLE_ANNOTATOR);
  auto stub = stack_->Gateway();
  v1::CreateUserRequest req;
  req.set_username("sneaky");
  req.set_password("sneaky-password");
  req.set_role(v1::ROLE_ADMIN);
  v1::User u;
  auto ctx = Ctx(annotator);
  EXPECT_EQ(stub->CreateUser(ctx.get(), req, &u).error_code(), StatusCode::PERMISSION_DENIED);
  v1::ListUsersResponse lu;
  auto c2 = Ctx(annotator);
  EXPECT_EQ(stub->ListUsers(c2.get(), {}, &lu).error_code(), StatusCode::PERMISSION_DENIED);
  // Bad input names the field.
  req.set_username("x");
  auto c3 = Ctx(stack_->AdminToken());
  auto s = stub->CreateUser(c3.get(), req, &u);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("username"), std::string::npos);
}

// Disabling an account refuses its access tokens at once (they would otherwise stay valid
// until they expire); enabling it again lets the same token back in.
TEST_F(GatewayAuthE2E, ADisabledUsersAccessTokenIsRefusedAtOnce) {
  int64_t id = 0;
  const auto token = stack_->NewUser("soon-disabled", v1::ROLE_ANNOTATOR, &id);
  auto stub = stack_->Gateway();
  v1::User me;
  auto c1 = Ctx(token);
  ASSERT_TRUE(stub->WhoAmI(c1.get(), {}, &me).ok());
  EXPECT_TRUE(ListProjects(token).ok());

  const auto set_disabled = [&](bool disabled) {
    v1::SetUserDisabledRequest req;
    req.set_user_id(id);
    req.set_disabled(disabled);
    v1::User u;
    auto ctx = Ctx(stack_->AdminToken());
    return stub->SetUserDisabled(ctx.get(), req, &u);
  };
  ASSERT_TRUE(set_disabled(true).ok());
  auto c2 = Ctx(token);
  auto s = stub->WhoAmI(c2.get(), {}, &me);
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("disabled"), std::string::npos) << s.error_message();
  EXPECT_EQ(ListProjects(token).error_code(), StatusCode::UNAUTHENTICATED);
  auto http = stack_->Http();
  auto res =
      http.Post("/v1/LabelingService/ListProjects",
                httplib::Headers{{"authorization", "Bearer " + token}}, "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << res->body;

  ASSERT_TRUE(set_disabled(false).ok());
  auto c3 = Ctx(token);
  EXPECT_TRUE(stub->WhoAmI(c3.get(), {}, &me).ok());
  EXPECT_TRUE(ListProjects(token).ok());
}

TEST_F(GatewayAuthE2E, InternalRpcsAreNotExposed) {
  const auto admin = stack_->AdminToken();
  auto ranking = v1::RankingService::NewStub(stack_->channel());
  v1::NextCandidatesRequest nreq;
  nreq.set_project_id(1);
  v1::NextCandidatesResponse nresp;
  auto c1 = Ctx(admin);
  EXPECT_EQ(ranking->NextCandidates(c1.get(), nreq, &nresp).error_code(),
            StatusCode::UNIMPLEMENTED);
  auto labeling = v1::LabelingService::NewStub(stack_->channel());
  v1::ServiceInfo info;
  auto c2 = Ctx(admin);
  EXPECT_EQ(labeling->GetInfo(c2.get(), {}, &info).error_code(), StatusCode::UNIMPLEMENTED);
  auto http = stack_->Http();
  auto res = http.Post("/v1/RankingService/NextCandidates", "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(GatewayAuthE2E, HttpMapsStatusesCorsAndRequestIds) {
  auto http = stack_->Http();
  // No credentials → 401 JSON error with the request id echoed.
  httplib::Headers h = {{"x-request-id", "req-abc-123"}, {"Origin", "https://ui.example"}};
  auto res = http.Post("/v1/LabelingService/ListProjects", h, "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(res->get_header_value("x-request-id"), "req-abc-123");
  EXPECT_EQ(res->get_header_value("Access-Control-Allow-Origin"), "https://ui.example");
  auto body = nlohmann::json::parse(res->body);
  EXPECT_EQ(body["code"], "UNAUTHENTICATED");
  EXPECT_EQ(body["request_id"], "req-abc-123");
  // A foreign origin gets no CORS grant.
  httplib::Headers evil = {{"Origin", "https://evil.example"}};
  res = http.Post("/v1/LabelingService/ListProjects", evil, "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->get_header_value("Access-Control-Allow-Origin").empty());
  // Login over HTTP, then a call with the token; bad JSON → 400 naming the problem.
  stack_->NewUser("http-caller", v1::ROLE_MANAGER);
  res = http.Post("/v1/GatewayService/Login",
                  R"({"username":"http-caller","password":"http-caller-password"})",
                  "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string token = nlohmann::json::parse(res->body)["accessToken"].get<std::string>();
  httplib::Headers auth = {{"authorization", "Bearer " + token}};
  res = http.Post("/v1/LabelingService/ListProjects", auth, "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  res = http.Post("/v1/LabelingService/GetProject", auth, R"({"projectId": "x"})",
                  "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  res = http.Post("/v1/LabelingService/GetProject", auth, R"({"projectId": 987654})",
                  "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404) << res->body;
  // Preflight.
  res = http.Options("/v1/LabelingService/ListProjects", h);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204);
  EXPECT_NE(res->get_header_value("Access-Control-Allow-Headers").find("authorization"),
            std::string::npos);
}

TEST_F(GatewayAuthE2E, StoppedServiceIsUnavailableByNameAndRecovers) {
  const auto admin = stack_->AdminToken();
  ASSERT_TRUE(ListProjects(admin).ok());
  auto* labeling = stack_->service("labeling");
  ASSERT_EQ(labeling->Stop(), 0);
  auto s = ListProjects(admin);
  EXPECT_EQ(s.error_code(), StatusCode::UNAVAILABLE);
  EXPECT_NE(s.error_message().find("labeling service unavailable at " + labeling->address()),
            std::string::npos)
      << s.error_message();
  auto http = stack_->Http();
  httplib::Headers auth = {{"authorization", "Bearer " + admin}};
  auto res = http.Post("/v1/LabelingService/ListProjects", auth, "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_NE(res->body.find("labeling service unavailable"), std::string::npos);
  labeling->Restart();
  ASSERT_TRUE(labeling->WaitServing(seconds(60))) << labeling->Log();
  EXPECT_TRUE(testing::WaitFor([&] { return ListProjects(admin).ok(); }, seconds(20)));
}

// Client streams through the proxy ended early by either side: the caller cancelling, or
// the gateway refusing a later message; the proxy then still carries whole uploads.
TEST_F(GatewayAuthE2E, UploadStreamsCancelledOrRefusedMidwayEndCleanly) {
  const auto admin = stack_->AdminToken();
  const int64_t project = CreateTabularProject(stack_->channel(), admin, "midway-1");
  const int64_t other = CreateTabularProject(stack_->channel(), admin, "midway-2");
  auto ingest = v1::LabelingIngestService::NewStub(stack_->channel());
  {
    SCOPED_TRACE("a later message names another project");
    auto ctx = Ctx(admin);
    v1::UploadResponse ur;
    auto w = ingest->Upload(ctx.get(), &ur);
    ASSERT_TRUE(w->Write(CsvUploadHeader(project)));
    w->Write(CsvUploadHeader(other));
    w->WritesDone();
    auto s = w->Finish();
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_NE(s.error_message().find("a stream must stay in one project"), std::string::npos)
        << s.error_message();
  }
  {
    SCOPED_TRACE("the caller cancels after the first chunk");
    auto ctx = Ctx(admin);
    v1::UploadResponse ur;
    auto w = ingest->Upload(ctx.get(), &ur);
    ASSERT_TRUE(w->Write(CsvUploadHeader(project)));
    w->Write(UploadChunk("id,x1,x2\nc0,0.1,0.2\n"));
    ctx->TryCancel();
    EXPECT_EQ(w->Finish().error_code(), StatusCode::CANCELLED);
  }
  // Labeling takes a few uploads at a time: the whole upload goes through once the ended
  // streams are over upstream too (the gateway cancelled them there), not after their
  // one-hour deadline.
  grpc::Status last;
  v1::UploadResponse ur;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        auto ctx = Ctx(admin);
        auto w = ingest->Upload(ctx.get(), &ur);
        w->Write(CsvUploadHeader(other));
        w->Write(UploadChunk("id,x1,x2\nw0,0.1,0.2\n"));
        w->Write(UploadChunk("w1,0.3,0.4\n"));
        w->WritesDone();
        last = w->Finish();
        return last.ok();
      },
      seconds(20)))
      << last.error_message();
  EXPECT_EQ(ur.items_inserted(), 2);
}

// The backend dies in the middle of a client stream: the caller gets UNAVAILABLE naming
// the service, and the proxy recovers once it is back.
TEST_F(GatewayAuthE2E, BackendKilledMidStreamIsUnavailableByName) {
  const auto admin = stack_->AdminToken();
  const int64_t project = CreateTabularProject(stack_->channel(), admin, "killed-midway");
  auto* labeling = stack_->service("labeling");
  auto ingest = v1::LabelingIngestService::NewStub(stack_->channel());
  auto ctx = Ctx(admin);
  v1::UploadResponse ur;
  auto w = ingest->Upload(ctx.get(), &ur);
  ASSERT_TRUE(w->Write(CsvUploadHeader(project)));
  ASSERT_TRUE(w->Write(UploadChunk("id,x1,x2\nk0,0.1,0.2\n")));
  labeling->process().Signal(SIGKILL);
  ASSERT_TRUE(labeling->process().Wait(seconds(10)).has_value());
  w->Write(UploadChunk("k1,0.3,0.4\n"));
  w->WritesDone();
  auto s = w->Finish();
  EXPECT_EQ(s.error_code(), StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("labeling service unavailable at " + labeling->address()),
            std::string::npos)
      << s.error_message();
  labeling->Restart();
  ASSERT_TRUE(labeling->WaitServing(seconds(60))) << labeling->Log();
  EXPECT_TRUE(testing::WaitFor([&] { return ListProjects(admin).ok(); }, seconds(20)));
}

// SIGTERM with a proxied stream open: the gateway drains within its grace period,
// cancels the stream and its upstream, and exits cleanly (its proxy queue drained).
TEST_F(GatewayAuthE2E, GatewayStopsCleanlyWithAProxiedStreamOpen) {
  Stack own({.gateway_args = {"--shutdown-grace-ms", "1000"}});
  ASSERT_TRUE(own.error().empty()) << own.error();
  const auto admin = own.AdminToken();
  const int64_t project = CreateTabularProject(own.channel(), admin, "draining");
  auto ingest = v1::LabelingIngestService::NewStub(own.channel());
  auto ctx = Ctx(admin);
  v1::UploadResponse ur;
  auto w = ingest->Upload(ctx.get(), &ur);
  ASSERT_TRUE(w->Write(CsvUploadHeader(project)));
  ASSERT_TRUE(w->Write(UploadChunk("id,x1,x2\nd0,0.1,0.2\n")));
  auto code = own.gateway().Stop(seconds(15));
  ASSERT_TRUE(code.has_value()) << "the gateway did not stop\n" << own.gateway().Log();
  EXPECT_EQ(*code, 0) << own.gateway().Log();
  EXPECT_FALSE(w->Finish().ok());
}

// The proxy counts its calls itself (no server interceptor on proxied methods): the same
// Prometheus series as every other gRPC call, per method and status code, with latency.
TEST_F(GatewayAuthE2E, ProxiedCallsAreCountedInMetrics) {
  Stack own({});
  ASSERT_TRUE(own.error().empty()) << own.error();
  const auto admin = own.AdminToken();
  auto lab = v1::LabelingService::NewStub(own.channel());
  for (int i = 0; i < 3; ++i) {
    auto ctx = Ctx(admin);
    v1::ListProjectsResponse r;
    ASSERT_TRUE(lab->ListProjects(ctx.get(), {}, &r).ok());
  }
  auto ctx = Ctx("not-a-token");
  v1::ListProjectsResponse r;
  EXPECT_EQ(lab->ListProjects(ctx.get(), {}, &r).error_code(), StatusCode::UNAUTHENTICATED);
  httplib::Client metrics("127.0.0.1", own.gateway().metrics_port());
  auto scraped = metrics.Get("/metrics");
  ASSERT_TRUE(scraped);
  const std::string method = "method=\"/labelloop.v1.LabelingService/ListProjects\"";
  EXPECT_NE(scraped->body.find("labelloop_grpc_requests_total{code=\"OK\"," + method + "} 3"),
            std::string::npos)
      << scraped->body;
  EXPECT_NE(scraped->body.find("labelloop_grpc_requests_total{code=\"UNAUTHENTICATED\"," + method +
                               "} 1"),
            std::string::npos)
      << scraped->body;
  EXPECT_NE(scraped->body.find("labelloop_grpc_request_duration_seconds_count{" + method + "} 4"),
            std::string::npos)
      << scraped->body;
}

TEST_F(GatewayAuthE2E, PerUserRateLimitGivesRetryAfter) {
  Stack limited({.gateway_args = {"--rate-limit-user", "3"}});
  ASSERT_TRUE(limited.error().empty()) << limited.error();
  const auto token = limited.AdminToken();
  auto stub = v1::LabelingService::NewStub(limited.channel());
  grpc::Status last;
  std::string retry_after;
  for (int i = 0; i < 4; ++i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ListProjectsResponse r;
    last = stub->ListProjects(&ctx, {}, &r);
    auto it = ctx.GetServerTrailingMetadata().find("retry-after");
    if (it != ctx.GetServerTrailingMetadata().end()) {
      retry_after = std::string(it->second.data(), it->second.size());
    }
  }
  EXPECT_EQ(last.error_code(), StatusCode::RESOURCE_EXHAUSTED) << last.error_message();
  EXPECT_FALSE(retry_after.empty());
}

// Replicas share a user's count through Redis: each counts its calls in memory and adds
// them to Redis every rate-limit-flush-ms, learning the others' counts as it does.
TEST_F(GatewayAuthE2E, ReplicasShareTheRateLimitThroughRedis) {
  Stack limited({.gateway_args = {"--rate-limit-user", "3", "--rate-limit-flush-ms", "20"}});
  ASSERT_TRUE(limited.error().empty()) << limited.error();
  auto replica = limited.AnotherGateway();
  ASSERT_NE(replica, nullptr);
  const auto token = limited.AdminToken();
  auto list = [&](const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListProjectsResponse r;
    return v1::LabelingService::NewStub(channel)->ListProjects(&ctx, {}, &r);
  };
  const auto flushed = std::chrono::milliseconds(300);  // many flush intervals
  for (int i = 0; i < 2; ++i) {
    auto s = list(limited.channel());
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::this_thread::sleep_for(flushed);
  auto third = list(replica->Channel());  // the replica has not counted any call yet
  ASSERT_TRUE(third.ok()) << third.error_message();
  std::this_thread::sleep_for(flushed);  // its flush sends 1 and learns 3
  auto fourth = list(replica->Channel());
  EXPECT_EQ(fourth.error_code(), StatusCode::RESOURCE_EXHAUSTED) << fourth.error_message();
}

// Stalled HTTP clients: four uploads that send their head and a few bytes of the body,
// then nothing, take all four workers of a gateway with --http-threads 4 (the least it
// allows). With --http-stall-timeout-seconds 1 the gateway closes them and its workers
// serve again.
TEST_F(GatewayAuthE2E, StalledHttpUploadsAreClosedAndFreeTheirWorkers) {
  Stack stalled({.gateway_args = {"--http-stall-timeout-seconds", "1", "--http-threads", "4"}});
  ASSERT_TRUE(stalled.error().empty()) << stalled.error();
  const auto token = stalled.AdminToken();
  const int64_t project = CreateTabularProject(stalled.channel(), token, "stalled-uploads");
  nlohmann::json first = {
      {"header",
       {{"projectId", std::to_string(project)},
        {"format", "UPLOAD_FORMAT_CSV"},
        {"mapping", {{"externalIdColumn", "id"}, {"featureColumns", {"x1", "x2"}}}}}}};
  const std::string head =
      "POST /v1/LabelingIngestService/Upload HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer " +
      token + "\r\n" + "X-Labelloop-First-Message: " + first.dump() + "\r\n" +
      "Content-Type: text/csv\r\nContent-Length: 1000000\r\n\r\n" + "id,x1,x2\nr1,0.5,0.25\n";
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {
    const int fd = testing::ConnectLoopback(stalled.http_port());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(head.size()));
    fds.push_back(fd);
  }
  // Every worker waits for the rest of a body: /healthz (served on a worker) waits too.
  {
    auto busy = stalled.Http();
    busy.set_read_timeout(0, 400000);
    auto res = busy.Get("/healthz");
    EXPECT_FALSE(res && res->status == 200) << "a worker was free while four uploads stalled";
  }
  // Each stalled upload is closed (its answer, if any, then the end of the stream).
  for (const int fd : fds) {
    EXPECT_TRUE(testing::ClosedWithin(fd, std::chrono::seconds(6)));
    ::close(fd);
  }
  auto http = stalled.Http();
  auto res = http.Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
}

}  // namespace
}  // namespace labelloop::gwtest
