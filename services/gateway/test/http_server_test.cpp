#include "services/gateway/http_server.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/testing/testing.hpp"

namespace labelloop::gateway::http {
namespace {

// A Server on a free loopback port for each test, and raw sockets to reach it.
class ServerTest : public ::testing::Test {
 protected:
  void Serve(ServerOptions o, Handlers h) {
    o.host = "127.0.0.1";
    o.port = 0;
    server_ = std::make_unique<Server>(o, std::move(h));
    ASSERT_TRUE(server_->Start());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
  }

  int Connect() const {
    const int fd = testing::ConnectLoopback(server_->port());
    EXPECT_GE(fd, 0);
    return fd;
  }

  static void Send(int fd, const std::string& s) {
    ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }

  std::unique_ptr<Server> server_;
};

// A server whose buffered answers come from another thread (as a proxied call's do) and
// whose /stream path answers in chunks from a worker after reading the body in pieces.
class HttpServerTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerOptions o;
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
    Serve(o, std::move(h));
  }
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
  const int fd = Connect();
  const auto start = std::chrono::steady_clock::now();
  Send(fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
  // The answer, then (idle limit 1 s) the end of the stream within a few seconds.
  std::string got;
  EXPECT_TRUE(testing::ClosedWithin(fd, std::chrono::seconds(5), &got));
  ::close(fd);
  EXPECT_NE(got.find("GET /one"), std::string::npos) << got;
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

// One worker and a stall limit of 1 s: /stream reads its body and answers; /big answers
// 64 MiB in chunks (more than loopback's socket buffers hold); /a is buffered.
class HttpServerStallTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.workers = 1;
    o.stall_timeout_seconds = 1;
    Handlers h;
    h.classify = [](const Request& r) {
      return r.path == "/a" ? Mode::kBuffered : Mode::kStreamed;
    };
    h.buffered = [](std::shared_ptr<Exchange> ex) {
      Response res;
      res.SetContent("body=" + std::to_string(ex->request().body.size()), "text/plain");
      ex->Respond(std::move(res));
    };
    h.streamed = [](Stream& st) {
      size_t bytes = 0;
      const bool whole = st.ReadBody([&](const char*, size_t n) {
        bytes += n;
        return true;
      });
      if (!whole) return;
      Response head;
      head.content_type = "text/plain";
      if (!st.StartChunked(head)) return;
      if (st.request().path == "/big") {
        const std::string piece(1 << 20, 'x');
        for (int i = 0; i < 64; ++i) {
          if (!st.WriteChunk(piece)) return;
        }
      } else {
        st.WriteChunk("read " + std::to_string(bytes) + " bytes");
      }
      st.EndChunked();
    };
    Serve(o, std::move(h));
  }

  // A streamed request from a fresh client; with one worker, it needs that worker free.
  std::string StreamedAnswer() const {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(5, 0);
    auto res = c.Post("/stream", "hello", "text/plain");
    return res ? res->body : "error: " + httplib::to_string(res.error());
  }
};

TEST_F(HttpServerStallTest, AStalledUploadIsClosedAndItsWorkerFreed) {
  const int fd = Connect();
  Send(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n0123456789");
  // The only worker is taken by the upload: its read waits for the rest of the body.
  EXPECT_FALSE(testing::ClosedWithin(fd, std::chrono::milliseconds(500)));
  EXPECT_TRUE(testing::ClosedWithin(fd, std::chrono::seconds(4)));
  ::close(fd);
  EXPECT_EQ(StreamedAnswer(), "read 5 bytes");
}

TEST_F(HttpServerStallTest, AClientThatStopsReadingIsClosedAndItsWorkerFreed) {
  const int fd = Connect();
  Send(fd, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  // Never reads: the worker's writes fill the socket buffers and then wait.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(StreamedAnswer(), "read 5 bytes");
  std::string got;
  // What the kernel had queued still arrives, then the end: well short of the answer.
  EXPECT_TRUE(testing::ClosedWithin(fd, std::chrono::seconds(10), &got)) << got.size();
  EXPECT_LT(got.size(), size_t{64} << 20);
  ::close(fd);
}

TEST_F(HttpServerStallTest, AStalledBufferedBodyIsClosed) {
  const int fd = Connect();
  Send(fd, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n0123456789");
  EXPECT_FALSE(testing::ClosedWithin(fd, std::chrono::milliseconds(500)));
  EXPECT_TRUE(testing::ClosedWithin(fd, std::chrono::seconds(4)));
  ::close(fd);
}

TEST_F(HttpServerStallTest, ASlowButSteadyUploadIsNotCut) {
  const int fd = Connect();
  Send(fd, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\n");
  // 8 bytes over 2.8 s, one every 350 ms: never 1 s without progress.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(350));
    Send(fd, "x");
  }
  std::string got;
  EXPECT_TRUE(testing::ClosedWithin(fd, std::chrono::seconds(4), &got));
  ::close(fd);
  EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
  EXPECT_NE(got.find("read 8 bytes"), std::string::npos) << got;
}

}  // namespace
}  // namespace labelloop::gateway::http
