#include "services/gateway/http_server.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace labelloop::gateway::http {
namespace {

// A server whose buffered answers come from another thread (as a proxied call's do) and
// whose /stream path answers in chunks from a worker after reading the body in pieces.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.max_body_bytes = 1000;
    o.idle_timeout_seconds = 1;
    Handlers h;
    h.classify = [](const Request& r) {
      return r.path == "/stream" ? Mode::kStreamed : Mode::kBuffered;
    };
    h.buffered = [](std::shared_ptr<Exchange> ex) {
      std::thread([ex] {
        const auto& r = ex->request();
        Response res;
        res.SetHeader("x-echo", r.Header("x-echo"));
        res.SetContent(r.method + " " + r.path + " q=" + r.Param("q") + " body=" + r.body,
                       "text/plain");
        ex->Respond(std::move(res));
      }).detach();
    };
    h.streamed = [](Stream& st) {
      size_t pieces = 0, bytes = 0;
      st.ReadBody([&](const char*, size_t n) {
        ++pieces;
        bytes += n;
        return true;
      });
      Response head;
      head.content_type = "text/plain";
      if (!st.StartChunked(head)) return;
      st.WriteChunk("read " + std::to_string(bytes) + " bytes;");
      st.WriteChunk(" done");
      st.EndChunked();
    };
    server_ = std::make_unique<Server>(o, std::move(h));
    ASSERT_TRUE(server_->Start());
  }

  void TearDown() override { server_->Stop(); }

  std::unique_ptr<Server> server_;
};

TEST_F(HttpServerTest, AnswersFromAnotherThreadOverOneKeepAliveConnection) {
  httplib::Client c("127.0.0.1", server_->port());
  c.set_keep_alive(true);
  for (int i = 0; i < 5; ++i) {
    auto res =
        c.Post("/a%20b?q=x%20y%21", {{"X-Echo", "e" + std::to_string(i)}}, "hello", "text/plain");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "POST /a b q=x y! body=hello");
    EXPECT_EQ(res->get_header_value("x-echo"), "e" + std::to_string(i));
  }
  auto res = c.Get("/get");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "GET /get q= body=");
}

TEST_F(HttpServerTest, StreamsBodiesAndChunkedAnswers) {
  httplib::Client c("127.0.0.1", server_->port());
  const std::string big(300000, 'x');  // larger than max_body_bytes: streamed, not refused
  auto res = c.Post("/stream", big, "application/octet-stream");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "read 300000 bytes; done");
}

TEST_F(HttpServerTest, RefusesBufferedBodiesOverTheLimit) {
  httplib::Client c("127.0.0.1", server_->port());
  auto res = c.Post("/a", std::string(1001, 'x'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  res = c.Post("/a", std::string(1000, 'x'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpServerTest, ClosesIdleConnections) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req = "GET /one HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  // The answer, then (idle limit 1 s) the end of the stream within a few seconds.
  std::string got;
  char buf[4096];
  const auto start = std::chrono::steady_clock::now();
  bool eof = false;
  while (!eof && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      eof = true;
    } else {
      got.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  EXPECT_NE(got.find("GET /one"), std::string::npos) << got;
  EXPECT_TRUE(eof);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

}  // namespace
}  // namespace labelloop::gateway::http
