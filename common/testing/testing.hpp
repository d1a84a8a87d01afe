// Test helpers shared by integration and end-to-end tests.
//
// tests/run exports LABELLOOP_TEST_PG_URL (a superuser URL of a throwaway server),
// LABELLOOP_TEST_REDIS_HOST/PORT, LABELLOOP_BIN_DIR and LABELLOOP_SOURCE_DIR. Tests that
// need them call GTEST_SKIP() with a message when they are missing, so a plain `ctest`
// outside tests/run says why rather than failing obscurely.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace labelloop::testing {

std::optional<std::string> Env(const std::string& name);

// The superuser URL of the test server, or nullopt outside tests/run.
std::optional<std::string> AdminPgUrl();
std::optional<std::pair<std::string, int>> TestRedis();
std::string BinDir();
std::string SourceDir();

// Replaces the database name of a libpq URL.
std::string WithDatabase(const std::string& url, const std::string& db);

// Creates an empty database with a unique name; drops it on destruction.
class TempDatabase {
 public:
  explicit TempDatabase(const std::string& admin_url);
  ~TempDatabase();
  TempDatabase(const TempDatabase&) = delete;
  TempDatabase& operator=(const TempDatabase&) = delete;
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

int FreePort();

// A blocking TCP connection to 127.0.0.1:port; -1 when it cannot be made.
int ConnectLoopback(int port);
// Reads fd until the peer closes it (or the connection fails), appending what arrives to
// *got when given; false if it is still open after `limit`.
bool ClosedWithin(int fd, std::chrono::milliseconds limit, std::string* got = nullptr);

// Polls cond every 20 ms until it holds or the timeout passes.
bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

// A child process started with extra environment variables; killed on destruction.
class ChildProcess {
 public:
  ChildProcess(const std::string& program, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {},
               const std::string& log_path = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits for exit; returns the exit status (or 128+signal), nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// A private Redis server on a free port, for tests that restart it.
class TempRedis {
 public:
  TempRedis();
  ~TempRedis();
  int port() const { return port_; }
  void Stop();
  void Start();  // again, on the same port

 private:
  int port_;
  std::string dir_;
  std::unique_ptr<ChildProcess> process_;
};

// A private PostgreSQL server (through tests/lib/pg-instance), for tests that restart it.
class TempPostgres {
 public:
  TempPostgres();
  ~TempPostgres();
  int port() const { return port_; }
  std::string url(const std::string& db = "postgres") const;
  void Restart();
  void Stop();
  void Start();

 private:
  int port_;
  std::string root_;
  std::string dir_;
};

// A real service binary from LABELLOOP_BIN_DIR started on free ports against the given
// PostgreSQL database and Redis; killed (SIGKILL) on destruction unless stopped.
//
//   ServiceUnderTest labeling("labelloop-labeling", db.url(), *TestRedis());
//   ASSERT_TRUE(labeling.WaitServing(std::chrono::seconds(30))) << labeling.Log();
//   auto stub = v1::LabelingService::NewStub(labeling.Channel());
class ServiceUnderTest {
 public:
  ServiceUnderTest(const std::string& binary, const std::string& pg_url,
                   const std::pair<std::string, int>& redis,
                   const std::vector<std::string>& extra_args = {},
                   const std::map<std::string, std::string>& extra_env = {});
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  std::shared_ptr<grpc::Channel> Channel() const;
  // True once the standard health service answers SERVING.
  bool WaitServing(std::chrono::milliseconds timeout) const;
  std::string Log() const;
  ChildProcess& process() { return *process_; }
  // SIGTERM and wait; returns the exit status (nullopt on timeout).
  std::optional<int> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Starts the same binary again on the same ports (after Stop or a kill).
  void Restart();

 private:
  std::string binary_;
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  int grpc_port_;
  int metrics_port_;
  std::string log_path_;
  std::unique_ptr<ChildProcess> process_;
};

// True when the gRPC health service at addr answers SERVING.
bool IsServing(const std::string& addr);

// Runs a shell command; returns its exit status.
int Shell(const std::string& command);

}  // namespace labelloop::testing
