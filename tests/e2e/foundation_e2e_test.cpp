// Starts all five service binaries against the test PostgreSQL and Redis and checks
// what an operator sees: health over the standard protocol, GetInfo, --help, bad
// configuration, and a clean exit 0 on SIGTERM.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "common/redis/redis.hpp"
#include "common/testing/testing.hpp"
#include "grpc/health/v1/health.grpc.pb.h"
#include "labelloop/v1/dl_manager.grpc.pb.h"
#include "labelloop/v1/labeling.grpc.pb.h"

namespace labelloop {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Binary {
  std::string name;
  std::string service;
};

const std::vector<Binary>& Binaries() {
  static const std::vector<Binary> kAll = {{"labelloop-gateway", "gateway"},
                                           {"labelloop-labeling", "labeling"},
                                           {"labelloop-ranking", "ranking"},
                                           {"labelloop-training", "training"},
                                           {"labelloop-dl-manager", "dl_manager"}};
  return kAll;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool Serving(const std::string& addr) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(500));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, req, &resp).ok() &&
         resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

class FoundationE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::AdminPgUrl();
    auto redis = testing::TestRedis();
    if (!url || !redis) GTEST_SKIP() << "needs tests/run (LABELLOOP_TEST_PG_URL, _REDIS_*)";
    db_ = std::make_unique<testing::TempDatabase>(*url);
    redis_ = *redis;
  }

  std::map<std::string, std::string> Env() const {
    return {{"LABELLOOP_PG_URL", db_->url()},
            {"LABELLOOP_REDIS_HOST", redis_.first},
            {"LABELLOOP_REDIS_PORT", std::to_string(redis_.second)},
            {"LABELLOOP_SHUTDOWN_GRACE_MS", "3000"},
            {"LABELLOOP_HEALTH_INTERVAL_MS", "100"},
            {"LABELLOOP_ENV_FILE", ""}};
  }

  struct Running {
    Binary binary;
    int grpc_port;
    int metrics_port;
    std::string log;
    std::unique_ptr<testing::ChildProcess> process;
  };

  Running Start(const Binary& b) {
    Running r{b, testing::FreePort(), testing::FreePort(),
              ::testing::TempDir() + "/" + b.name + "_" + std::to_string(getpid()) + ".log",
              nullptr};
    std::vector<std::string> args = {"--grpc-port", std::to_string(r.grpc_port), "--metrics-port",
                                     std::to_string(r.metrics_port)};
    if (b.service == "gateway") {
      args.insert(args.end(), {"--http-port", std::to_string(testing::FreePort())});
    }
    r.process = std::make_unique<testing::ChildProcess>(testing::BinDir() + "/" + b.name, args,
                                                        Env(), r.log);
    return r;
  }

  std::unique_ptr<testing::TempDatabase> db_;
  std::pair<std::string, int> redis_;
};

TEST_F(FoundationE2E, AllFiveServeHealthAndExitZeroOnSigterm) {
  std::vector<Running> running;
  for (const auto& b : Binaries()) running.push_back(Start(b));
  for (auto& r : running) {
    const std::string addr = "127.0.0.1:" + std::to_string(r.grpc_port);
    EXPECT_TRUE(testing::WaitFor([&] { return Serving(addr); }, seconds(30)))
        << r.binary.name << " never reported SERVING; log:\n"
        << ReadFile(r.log);
  }

  // GetInfo answers with the service name and its schema version.
  auto stub = v1::LabelingService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(running[1].grpc_port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::ServiceInfo info;
  ASSERT_TRUE(stub->GetInfo(&ctx, v1::GetInfoRequest(), &info).ok());
  EXPECT_EQ(info.service(), "labeling");
  EXPECT_GE(info.schema_version(), 1);
  EXPECT_FALSE(info.version().empty());
  // ClaimNext is served on the completion-queue API and counts itself (no interceptor).
  {
    grpc::ClientContext claim_ctx;
    v1::ClaimNextResponse claimed;
    EXPECT_EQ(stub->ClaimNext(&claim_ctx, v1::ClaimNextRequest(), &claimed).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  // Prometheus metrics count the calls above, per method and code, with their latency.
  httplib::Client metrics("127.0.0.1", running[1].metrics_port);
  auto scraped = metrics.Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_NE(scraped->body.find("labelloop_grpc_requests_total{code=\"OK\",method=\"/"
                               "labelloop.v1.LabelingService/GetInfo\"} 1"),
            std::string::npos)
      << scraped->body;
  EXPECT_NE(scraped->body.find("labelloop_grpc_request_duration_seconds_count{method=\"/"
                               "labelloop.v1.LabelingService/GetInfo\"} 1"),
            std::string::npos);
  EXPECT_NE(scraped->body.find("labelloop_grpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"/"
                               "labelloop.v1.LabelingService/ClaimNext\"} 1"),
            std::string::npos)
      << scraped->body;
  EXPECT_NE(scraped->body.find("labelloop_pg_pool_size 8"), std::string::npos);
  EXPECT_NE(scraped->body.find("labelloop_redis_up 1"), std::string::npos);

  // dl_manager listens on its channel and logs what it receives.
  redis::Client pub({.host = redis_.first, .port = redis_.second});
  const std::string marker =
      "{\"type\":\"download.requested\",\"probe\":" + std::to_string(getpid()) + "}";
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        pub.Publish("labelloop.downloads.requested", marker);
        return ReadFile(running[4].log).find(marker) != std::string::npos;
      },
      seconds(10)))
      << ReadFile(running[4].log);

  for (auto& r : running) {
    r.process->Signal(SIGTERM);
    auto code = r.process->Wait(seconds(6));  // grace is 3 s
    ASSERT_TRUE(code.has_value()) << r.binary.name << " did not exit within the grace period";
    EXPECT_EQ(*code, 0) << r.binary.name << " log:\n" << ReadFile(r.log);
  }
}

TEST_F(FoundationE2E, ReportsNotServingWhileRedisIsDownAndRecovers) {
  testing::TempRedis private_redis;
  redis_ = {"127.0.0.1", private_redis.port()};
  Running r = Start(Binaries()[2]);
  const std::string addr = "127.0.0.1:" + std::to_string(r.grpc_port);
  ASSERT_TRUE(testing::WaitFor([&] { return Serving(addr); }, seconds(30))) << ReadFile(r.log);
  private_redis.Stop();
  EXPECT_TRUE(testing::WaitFor([&] { return !Serving(addr); }, seconds(10)));
  private_redis.Start();
  EXPECT_TRUE(testing::WaitFor([&] { return Serving(addr); }, seconds(10)));
  r.process->Signal(SIGINT);
  EXPECT_EQ(r.process->Wait(seconds(6)), 0);
}

TEST(FoundationCli, HelpListsSettingsAndBadConfigNamesTheSetting) {
  for (const auto& b : Binaries()) {
    const std::string bin = testing::BinDir() + "/" + b.name;
    const std::string out = ::testing::TempDir() + "/help_" + b.service + ".txt";
    EXPECT_EQ(testing::Shell(bin + " --help > " + out + " 2>&1"), 0) << b.name;
    std::string help = ReadFile(out);
    for (const char* needle :
         {"--grpc-port", "LABELLOOP_PG_URL", "--redis-port", "--log-format", "[default: "}) {
      EXPECT_NE(help.find(needle), std::string::npos) << b.name << " help lacks " << needle;
    }
    EXPECT_EQ(testing::Shell("LABELLOOP_ENV_FILE= LABELLOOP_REDIS_PORT=notaport " + bin + " > " +
                             out + " 2>&1"),
              2)
        << b.name;
    std::string err = ReadFile(out);
    EXPECT_NE(err.find("'redis-port'"), std::string::npos) << err;
    EXPECT_NE(err.find("'notaport' is not an integer"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace labelloop
