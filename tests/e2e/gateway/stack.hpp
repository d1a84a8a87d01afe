// A gateway in front of some or all internal services, on free ports, against the test
// PostgreSQL database and Redis; plus the helpers the gateway tests share (logins,
// authenticated contexts, an HTTP client).
#pragma once

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/testing/testing.hpp"
#include "labelloop/v1/gateway.grpc.pb.h"
#include "labelloop/v1/labeling_ingest.pb.h"

namespace labelloop::gwtest {

inline constexpr const char* kJwtSecret = "test-secret-0123456789abcdefghijklmnop";
inline constexpr const char* kAdmin = "root";
inline constexpr const char* kAdminPassword = "root-password-1";

struct StackOptions {
  bool labeling = true;
  bool ranking = false;
  bool training = false;
  bool dl_manager = false;
  std::vector<std::string> gateway_args;
};

class Stack {
 public:
  // Empty error() when everything is SERVING.
  explicit Stack(StackOptions options);
  ~Stack();
  const std::string& error() const { return error_; }
  bool skipped() const { return skipped_; }

  testing::ServiceUnderTest& gateway() { return *gateway_; }
  testing::ServiceUnderTest* service(const std::string& name);
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  int http_port() const { return http_port_; }
  httplib::Client Http() const;
  const std::string& pg_url() const;

  // Login → access token (fails the test on error).
  std::string Login(const std::string& user, const std::string& password);
  std::string AdminToken();
  // Creates a user (as admin) and returns their access token; user id in *id.
  std::string NewUser(const std::string& name, v1::Role role, int64_t* id = nullptr);
  void AddMember(int64_t project, int64_t user_id, v1::Role role);
  std::unique_ptr<v1::GatewayService::Stub> Gateway() const {
    return v1::GatewayService::NewStub(channel_);
  }
  // A second gateway replica of this stack (same database, Redis and settings, its own
  // ports), SERVING; nullptr (and a test failure) when it does not start.
  std::unique_ptr<testing::ServiceUnderTest> AnotherGateway();

 private:
  std::string error_;
  bool skipped_ = false;
  std::unique_ptr<testing::TempDatabase> db_;
  std::pair<std::string, int> redis_;
  std::map<std::string, std::unique_ptr<testing::ServiceUnderTest>> services_;
  std::unique_ptr<testing::ServiceUnderTest> gateway_;
  std::shared_ptr<grpc::Channel> channel_;
  int http_port_ = 0;
  std::vector<std::string> gateway_args_;  // all but --http-port
  std::string admin_token_;
};

// A context with `authorization: Bearer <token>` and a deadline.
std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token, int seconds = 30);

// As `token`, through the gateway: a new tabular project (classes pos/neg); returns its id.
int64_t CreateTabularProject(const std::shared_ptr<grpc::Channel>& channel,
                             const std::string& token, const std::string& name);

// The first message of an Upload of CSV rows "id,x1,x2" into `project`.
v1::UploadRequest CsvUploadHeader(int64_t project);

}  // namespace labelloop::gwtest
