#include "common/testing/testing.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"

namespace labelloop::testing {

std::optional<std::string> Env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::optional<std::string> AdminPgUrl() { return Env("LABELLOOP_TEST_PG_URL"); }

std::optional<std::pair<std::string, int>> TestRedis() {
  auto host = Env("LABELLOOP_TEST_REDIS_HOST");
  auto port = Env("LABELLOOP_TEST_REDIS_PORT");
  if (!host || !port) return std::nullopt;
  return std::make_pair(*host, std::stoi(*port));
}

std::string BinDir() { return Env("LABELLOOP_BIN_DIR").value_or(LABELLOOP_DEFAULT_BIN_DIR); }
std::string SourceDir() {
  return Env("LABELLOOP_SOURCE_DIR").value_or(LABELLOOP_DEFAULT_SOURCE_DIR);
}

std::string WithDatabase(const std::string& url, const std::string& db) {
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  auto query = url.find('?');
  std::string base = slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash);
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + db + rest;
}

TempDatabase::TempDatabase(const std::string& admin_url) : admin_url_(admin_url) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  name_ = "lltest_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
          std::to_string(rd() % 100000);
  pqxx::connection c(admin_url_);
  pqxx::nontransaction tx(c);
  tx.exec("CREATE DATABASE " + tx.quote_name(name_));
  url_ = WithDatabase(admin_url_, name_);
}

TempDatabase::~TempDatabase() {
  try {
    pqxx::connection c(admin_url_);
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception&) {
    // Best effort: a throwaway server is removed by tests/run anyway.
  }
}

int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool ClosedWithin(int fd, std::chrono::milliseconds limit, std::string* got) {
  const auto end = std::chrono::steady_clock::now() + limit;
  char buf[65536];
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
    if (got != nullptr) got->append(buf, static_cast<size_t>(n));
  }
  return false;
}

int FreePort() {
  // The kernel may hand the same free port to two binds in a row when nothing holds the
  // first yet (a service's HTTP and metrics ports, say): never return a port twice in one
  // test process.
  static std::mutex mu;
  static std::set<int> handed_out;
  std::lock_guard lock(mu);
  for (int attempt = 0;; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    int port = ntohs(addr.sin_port);
    close(fd);
    if (handed_out.insert(port).second || attempt >= 100) return port;
  }
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

ChildProcess::ChildProcess(const std::string& program, const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env,
                           const std::string& log_path) {
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Child: the test process may block signals for its own reasons; start clean.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (!log_path.empty()) {
      FILE* f = freopen(log_path.c_str(), "a", stderr);
      if (f != nullptr) dup2(fileno(stderr), STDOUT_FILENO);
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (running()) {
    Signal(SIGKILL);
    Wait(std::chrono::seconds(5));
  }
}

bool ChildProcess::running() {
  if (status_ || pid_ <= 0) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (running()) kill(pid_, sig);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  WaitFor([this] { return !running(); }, timeout);
  return status_;
}

TempRedis::TempRedis() : port_(FreePort()) {
  dir_ = std::filesystem::temp_directory_path() /
         ("llredis_" + std::to_string(getpid()) + "_" + std::to_string(port_));
  std::filesystem::create_directories(dir_);
  Start();
}

TempRedis::~TempRedis() {
  Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void TempRedis::Start() {
  process_ = std::make_unique<ChildProcess>(
      "/usr/bin/redis-server",
      std::vector<std::string>{"--port", std::to_string(port_), "--bind", "127.0.0.1", "--dir",
                               dir_, "--save", "", "--appendonly", "no"},
      std::map<std::string, std::string>{}, dir_ + "/redis.log");
  const std::string ping = "redis-cli -p " + std::to_string(port_) + " ping >/dev/null 2>&1";
  if (!WaitFor([&] { return Shell(ping) == 0; }, std::chrono::seconds(10))) {
    throw std::runtime_error("private redis-server did not start on port " + std::to_string(port_));
  }
}

void TempRedis::Stop() {
  if (process_) {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(5));
    process_.reset();
  }
}

TempPostgres::TempPostgres() : port_(FreePort()) {
  // pg-instance puts run/ and log/ beside the data folder, so give it a parent of its own.
  root_ = std::filesystem::temp_directory_path() /
          ("llpg_" + std::to_string(getpid()) + "_" + std::to_string(port_));
  std::filesystem::create_directories(root_);
  std::filesystem::permissions(
      root_, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                 std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                 std::filesystem::perms::others_exec);
  dir_ = root_ + "/pg";
  Start();
}

TempPostgres::~TempPostgres() {
  Stop();
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

std::string TempPostgres::url(const std::string& db) const {
  return "postgresql://labelloop@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

void TempPostgres::Start() {
  std::string cmd =
      SourceDir() + "/tests/lib/pg-instance start " + dir_ + " " + std::to_string(port_);
  if (Shell(cmd) != 0) throw std::runtime_error("could not start private PostgreSQL: " + cmd);
}

void TempPostgres::Stop() {
  Shell(SourceDir() + "/tests/lib/pg-instance stop " + dir_ + " >/dev/null 2>&1");
}

void TempPostgres::Restart() {
  std::string cmd =
      SourceDir() + "/tests/lib/pg-instance restart " + dir_ + " " + std::to_string(port_);
  if (Shell(cmd) != 0) throw std::runtime_error("could not restart private PostgreSQL");
}

int Shell(const std::string& command) {
  int st = std::system(command.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace labelloop::testing

namespace labelloop::testing {

bool IsServing(const std::string& addr) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, req, &resp).ok() &&
         resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

ServiceUnderTest::ServiceUnderTest(const std::string& binary, const std::string& pg_url,
                                   const std::pair<std::string, int>& redis,
                                   const std::vector<std::string>& extra_args,
                                   const std::map<std::string, std::string>& extra_env)
    : binary_(binary), grpc_port_(FreePort()), metrics_port_(FreePort()) {
  static std::atomic<int> counter{0};
  log_path_ = ::testing::TempDir() + "/" + binary + "_" + std::to_string(getpid()) + "_" +
              std::to_string(counter++) + ".log";
  args_ = {"--grpc-port",    std::to_string(grpc_port_),
           "--metrics-port", std::to_string(metrics_port_),
           "--grpc-host",    "127.0.0.1",
           "--metrics-host", "127.0.0.1"};
  if (binary == "labelloop-gateway") {
    args_.insert(args_.end(), {"--http-port", std::to_string(FreePort())});
  }
  args_.insert(args_.end(), extra_args.begin(), extra_args.end());
  env_ = {{"LABELLOOP_PG_URL", pg_url},
          {"LABELLOOP_REDIS_HOST", redis.first},
          {"LABELLOOP_REDIS_PORT", std::to_string(redis.second)},
          {"LABELLOOP_SHUTDOWN_GRACE_MS", "3000"},
          {"LABELLOOP_HEALTH_INTERVAL_MS", "100"},
          {"LABELLOOP_ENV_FILE", ""}};
  for (const auto& [k, v] : extra_env) env_[k] = v;
  Restart();
}

void ServiceUnderTest::Restart() {
  process_ = std::make_unique<ChildProcess>(BinDir() + "/" + binary_, args_, env_, log_path_);
}

std::shared_ptr<grpc::Channel> ServiceUnderTest::Channel() const {
  return grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
}

bool ServiceUnderTest::WaitServing(std::chrono::milliseconds timeout) const {
  return WaitFor([&] { return IsServing(address()); }, timeout);
}

std::string ServiceUnderTest::Log() const {
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::optional<int> ServiceUnderTest::Stop(std::chrono::milliseconds timeout) {
  process_->Signal(SIGTERM);
  return process_->Wait(timeout);
}

}  // namespace labelloop::testing
