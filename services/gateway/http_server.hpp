// A small HTTP/1.1 server for the gateway's HTTP/JSON API: Boost.Beast's parser on
// Boost.Asio's epoll reactor, a few I/O threads for any number of keep-alive connections.
// A "buffered" request (whole body in memory, e.g. a unary call) is handed over as an
// Exchange that may be answered later from any thread — the answer is written straight
// from that thread, so a proxied call needs no thread of its own while it waits upstream.
// A "streamed" request (request body or answer streamed: uploads, Server-Sent Events)
// runs on a worker thread with blocking reads and writes.
//
// It replaces cpp-httplib, whose thread-per-connection model polled every idle keep-alive
// connection every 10 ms and polled before every read and write: ~8 poll calls and ~8
// context switches per request, most of the gateway's CPU per HTTP call.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace labelloop::gateway::http {

struct Request {
  std::string method;                                        // "GET", "POST", ...
  std::string path;                                          // percent-decoded, without the query
  std::vector<std::pair<std::string, std::string>> params;   // decoded query, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;  // the whole body of a buffered request; empty for streamed ones
  std::string remote_addr;

  // "" when absent; `name` lower-case.
  std::string Header(std::string_view name) const;
  bool HasParam(std::string_view name) const;
  size_t ParamCount(std::string_view name) const;
  // The index-th value of `name`, "" when absent.
  std::string Param(std::string_view name, size_t index = 0) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;  // sent with a body
  std::string body;

  void SetHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
  void SetContent(std::string content, std::string type) {
    body = std::move(content);
    content_type = std::move(type);
  }
};

// A buffered request waiting for its answer. Respond exactly once, from any thread.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const Request& request() const = 0;
  virtual void Respond(Response response) = 0;
};

// A streamed request, on a worker thread; every call blocks.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual const Request& request() const = 0;
  // Hands the body to `sink` piece by piece until it ends or `sink` returns false; false
  // when the connection broke. Call at most once.
  virtual bool ReadBody(const std::function<bool(const char*, size_t)>& sink) = 0;
  // The whole answer, or (chunked) a head, then pieces, then the end. Write* return false
  // once the client is gone.
  virtual void Answer(const Response& response) = 0;
  virtual bool StartChunked(const Response& head) = 0;
  virtual bool WriteChunk(std::string_view data) = 0;
  virtual void EndChunked() = 0;
};

enum class Mode { kBuffered, kStreamed };

struct ServerOptions {
  std::string host = "0.0.0.0";
  int port = 0;  // 0: any free port
  int io_threads = 2;
  int workers = 128;                  // streamed requests served at once
  size_t max_body_bytes = 64u << 20;  // buffered requests; larger ones get 413
  int idle_timeout_seconds = 60;      // a connection waiting this long for a request is closed
  // A read of a request body or a write of an answer that makes no progress for this long
  // closes the connection: a client that stops sending or reading mid-request must not
  // hold a worker (streamed requests block one) or a connection for ever.
  int stall_timeout_seconds = 60;
};

struct Handlers {
  // Chooses from the method, path, query and headers how the request is served.
  std::function<Mode(const Request& head)> classify;
  std::function<void(std::shared_ptr<Exchange>)> buffered;  // on an I/O thread: do not block long
  std::function<void(Stream&)> streamed;                    // on a worker thread
};

class Server {
 public:
  Server(ServerOptions options, Handlers handlers);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Binds and starts serving; false when the address cannot be bound.
  bool Start() {
    if (!Listen()) return false;
    Run();
    return true;
  }
  // Binds and listens (connections wait in the backlog); false when the address cannot
  // be bound. port() is known from then on.
  bool Listen();
  // Accepts and serves, after Listen.
  void Run();
  int port() const;
  // Stops accepting, closes every connection and waits for the workers.
  void Stop();
  // Runs work that may block (database, Redis) on a worker thread.
  void RunBlocking(std::function<void()> task);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Percent-decoding; '+' as a space when `plus_is_space` (query strings).
std::string DecodeUrl(std::string_view s, bool plus_is_space);

}  // namespace labelloop::gateway::http
