#include "services/gateway/http_server.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

namespace labelloop::gateway::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

int64_t NowTicks() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void ParseQuery(std::string_view q, std::vector<std::pair<std::string, std::string>>* out) {
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    out->emplace_back(
        DecodeUrl(part.substr(0, eq), true),
        eq == std::string_view::npos ? std::string() : DecodeUrl(part.substr(eq + 1), true));
  }
}

// Status line and headers; a body with Content-Length, or chunked when `chunked`.
std::string Head(const Response& r, bool keep_alive, bool chunked) {
  std::string out;
  out.reserve(256 + r.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  const auto reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(r.status)));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  for (const auto& [name, value] : r.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!r.content_type.empty()) {
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\n";
  }
  if (chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (r.status >= 200 && r.status != 204 && r.status != 304) {
    out += "Content-Length: ";
    out += std::to_string(r.body.size());
    out += "\r\n";
  }
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

}  // namespace

std::string DecodeUrl(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

bool Request::HasParam(std::string_view name) const { return ParamCount(name) > 0; }

size_t Request::ParamCount(std::string_view name) const {
  size_t n = 0;
  for (const auto& p : params) n += p.first == name ? 1 : 0;
  return n;
}

std::string Request::Param(std::string_view name, size_t index) const {
  for (const auto& [k, v] : params) {
    if (k == name && index-- == 0) return v;
  }
  return "";
}

class Session;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  ServerOptions options;
  Handlers handlers;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> io_threads;
  std::atomic<bool> stopping{false};
  int port = 0;

  // Workers for streamed requests.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> tasks;
  bool workers_stopping = false;  // under mu
  std::vector<std::thread> workers;

  std::mutex sessions_mu;
  std::unordered_set<Session*> sessions;
  net::steady_timer sweep_timer{ioc};

  Impl(ServerOptions o, Handlers h)
      : options(std::move(o)), handlers(std::move(h)), ioc(std::max(1, options.io_threads)) {}

  // Runs `task` on a worker; once the server stops, on the calling thread (so that work
  // handed over late, e.g. a call's answer, still finishes).
  void Submit(std::function<void()> task) {
    {
      std::unique_lock lock(mu);
      if (!workers_stopping) {
        tasks.push_back(std::move(task));
        lock.unlock();
        cv.notify_one();
        return;
      }
    }
    task();
  }

  // Workers finish the tasks queued before the stop.
  void WorkerLoop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return workers_stopping || !tasks.empty(); });
        if (tasks.empty()) return;
        task = std::move(tasks.front());
        tasks.pop_front();
      }
      task();
    }
  }

  void Accept();
  void Sweep();
};

class Session final : public Exchange, public Stream, public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Server::Impl> server, tcp::socket socket)
      : server_(std::move(server)), socket_(std::move(socket)) {
    beast::error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    if (!ec) remote_addr_ = ep.address().to_string();
    std::lock_guard lock(server_->sessions_mu);
    server_->sessions.insert(this);
  }

  ~Session() override {
    std::lock_guard lock(server_->sessions_mu);
    server_->sessions.erase(this);
  }

  // From Stop, on any thread: wakes whatever waits on the connection.
  void Shutdown() {
    std::lock_guard lock(close_mu_);
    if (open_) ::shutdown(socket_.native_handle(), SHUT_RDWR);
  }

  // From the sweeper: a connection idle (or sending its header) for longer than
  // `idle_limit`, as cpp-httplib's keep-alive timeout did, or whose body read or answer
  // write has made no progress for longer than `stall_limit`, is shut down (whatever
  // waits on it fails, and the connection closes).
  void ShutdownIfOverdue(int64_t now, int64_t idle_limit, int64_t stall_limit) {
    const auto over = [now](const std::atomic<int64_t>& since, int64_t limit) {
      const int64_t t = since.load(std::memory_order_relaxed);
      return t != 0 && now - t > limit;
    };
    if (over(idle_since_, idle_limit)) return Shutdown();
    if (over(io_since_, stall_limit)) {
      // (The request is the I/O thread's to read; the address is fixed.)
      spdlog::warn("HTTP connection from {}: no progress for {} s, closing it", remote_addr_,
                   server_->options.stall_timeout_seconds);
      Shutdown();
    }
  }

  void ReadHead() {
    if (server_->stopping) return Close();
    idle_since_.store(NowTicks(), std::memory_order_relaxed);
    request_ = Request{};
    request_.remote_addr = remote_addr_;
    responded_ = false;
    body_read_ = false;
    head_.emplace();
    head_->header_limit(64 * 1024);
    // The header only: limits are checked per mode in OnHead. (Beast 1.74 compares a
    // boost::none limit as exceeded: no limit is the largest number.)
    head_->body_limit(kNoLimit);
    bhttp::async_read_header(
        socket_, buffer_, *head_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHead(ec); });
  }

  const Request& request() const override { return request_; }

  // Exchange: the answer is written from the calling thread; the client waits for it and
  // nothing else touches the socket until then.
  void Respond(Response response) override {
    if (responded_.exchange(true)) return;
    out_ = Head(response, keep_alive_, false);
    out_ += response.body;
    size_t sent = 0;
    while (sent < out_.size()) {
      const ssize_t n =
          ::send(socket_.native_handle(), out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        WaitingOnIo(true);
        net::async_write(socket_, net::buffer(out_.data() + sent, out_.size() - sent),
                         [self = shared_from_this()](beast::error_code ec, size_t) {
                           self->WaitingOnIo(false);
                           if (ec) return self->Close();
                           self->AfterAnswer();
                         });
        return;
      } else {
        return Close();
      }
    }
    AfterAnswer();
  }

  // Stream (worker thread, blocking).
  bool ReadBody(const std::function<bool(const char*, size_t)>& sink) override {
    if (body_read_) return true;
    body_read_ = true;
    if (head_->is_done()) return true;
    bhttp::request_parser<bhttp::buffer_body> p(std::move(*head_));
    p.body_limit(kNoLimit);
    std::vector<char> buf(64 * 1024);
    while (!p.is_done()) {
      p.get().body().data = buf.data();
      p.get().body().size = buf.size();
      beast::error_code ec;
      // read_some: back after each piece, so a slow but steady upload counts as progress.
      WaitingOnIo(true);
      bhttp::read_some(socket_, buffer_, p, ec);
      WaitingOnIo(false);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        keep_alive_ = false;
        return false;
      }
      const size_t n = buf.size() - p.get().body().size;
      if (n > 0 && !sink(buf.data(), n)) {
        if (!p.is_done()) keep_alive_ = false;  // the rest of the body is still unread
        return true;
      }
    }
    return true;
  }

  void Answer(const Response& response) override {
    if (responded_.exchange(true)) return;
    std::string out = Head(response, keep_alive_ && BodyConsumed(), false);
    out += response.body;
    WriteAll(out);
  }

  bool StartChunked(const Response& head) override {
    if (responded_.exchange(true)) return false;
    chunked_open_ = true;
    return WriteAll(Head(head, keep_alive_ && BodyConsumed(), true));
  }

  bool WriteChunk(std::string_view data) override {
    if (data.empty()) return !broken_;  // an empty chunk would end the answer
    char size[24];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    const std::array<net::const_buffer, 3> parts = {net::buffer(size, static_cast<size_t>(n)),
                                                    net::buffer(data.data(), data.size()),
                                                    net::buffer("\r\n", 2)};
    return WriteAll(parts);
  }

  void EndChunked() override {
    if (!chunked_open_) return;
    chunked_open_ = false;
    WriteAll(std::string_view("0\r\n\r\n"));
  }

 private:
  friend struct Server::Impl;

  bool BodyConsumed() const { return body_read_ || head_->is_done(); }

  // Marks the start (and end) of a read or write that waits on the client.
  void WaitingOnIo(bool waiting) {
    io_since_.store(waiting ? NowTicks() : 0, std::memory_order_relaxed);
  }

  template <typename Buffers>
  bool WriteAll(const Buffers& buffers) {
    if (broken_) return false;
    beast::error_code ec;
    WaitingOnIo(true);
    // At most 64 KiB per write, each one restarting the stall clock: a slow but steady
    // reader of a large answer is progress too.
    size_t last = 0;
    net::write(
        socket_, buffers,
        [&](const beast::error_code& e, size_t done) -> size_t {
          if (e) return 0;
          if (done != last) {
            last = done;
            WaitingOnIo(true);
          }
          return 64 * 1024;
        },
        ec);
    WaitingOnIo(false);
    if (ec) broken_ = true;
    return !broken_;
  }
  bool WriteAll(std::string_view s) { return WriteAll(net::buffer(s.data(), s.size())); }
  bool WriteAll(const std::string& s) { return WriteAll(std::string_view(s)); }

  void OnHead(beast::error_code ec) {
    idle_since_.store(0, std::memory_order_relaxed);
    if (ec) return Close();
    const auto& h = head_->get();
    request_.method = std::string(h.method_string());
    const std::string_view target(h.target().data(), h.target().size());
    const size_t q = target.find('?');
    request_.path = DecodeUrl(target.substr(0, q), false);
    if (q != std::string_view::npos) ParseQuery(target.substr(q + 1), &request_.params);
    for (const auto& f : h) {
      std::string name(f.name_string());
      for (auto& c : name) c = Lower(c);
      request_.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    keep_alive_ = h.keep_alive();
    broken_ = false;
    chunked_open_ = false;
    Mode mode = Mode::kBuffered;
    try {
      mode = server_->handlers.classify(request_);
    } catch (const std::exception& e) {
      spdlog::error("HTTP {}: {}", request_.path, e.what());
    }
    if (!head_->is_done() && beast::iequals(h[bhttp::field::expect], "100-continue")) {
      beast::error_code wec;
      net::write(socket_, net::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")), wec);
      if (wec) return Close();
    }
    if (mode == Mode::kStreamed) {
      server_->Submit([self = shared_from_this()] { self->RunStreamed(); });
      return;
    }
    if (head_->is_done()) return Dispatch();
    const auto length = head_->content_length();
    if (length && *length > server_->options.max_body_bytes) return TooLarge();
    body_.emplace(std::move(*head_));
    body_->body_limit(server_->options.max_body_bytes);
    ReadBufferedBody();
  }

  // A piece at a time, so that each piece counts as progress against the stall limit.
  void ReadBufferedBody() {
    WaitingOnIo(true);
    bhttp::async_read_some(socket_, buffer_, *body_,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             self->WaitingOnIo(false);
                             if (!ec && !self->body_->is_done()) return self->ReadBufferedBody();
                             self->OnBody(ec);
                           });
  }

  void TooLarge() {
    keep_alive_ = false;  // the body stays unread
    Response r;
    r.status = 413;
    r.SetContent(
        "request body larger than " + std::to_string(server_->options.max_body_bytes) + " bytes\n",
        "text/plain");
    Respond(std::move(r));
  }

  void OnBody(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return TooLarge();
    if (ec) return Close();
    request_.body = std::move(body_->get().body());
    body_.reset();
    Dispatch();
  }

  void Dispatch() {
    try {
      server_->handlers.buffered(shared_from_this());
    } catch (const std::exception& e) {
      spdlog::error("HTTP {}: {}", request_.path, e.what());
      Response r;
      r.status = 500;
      Respond(std::move(r));
    }
  }

  void RunStreamed() {
    try {
      server_->handlers.streamed(*this);
    } catch (const std::exception& e) {
      spdlog::error("HTTP {}: {}", request_.path, e.what());
      keep_alive_ = false;
    }
    if (!responded_) {
      Response r;
      r.status = 500;
      Answer(r);
    }
    // A chunked answer left unfinished must not look complete to the client: close.
    if (broken_ || chunked_open_ || !keep_alive_ || !BodyConsumed()) return Close();
    ReadHead();
  }

  void AfterAnswer() {
    if (!keep_alive_) return Close();
    ReadHead();
  }

  void Close() {
    std::lock_guard lock(close_mu_);
    if (!open_) return;
    open_ = false;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  std::shared_ptr<Server::Impl> server_;
  tcp::socket socket_;
  std::string remote_addr_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> head_;
  std::optional<bhttp::request_parser<bhttp::string_body>> body_;
  Request request_;
  std::string out_;
  bool keep_alive_ = true;
  bool body_read_ = false;
  bool broken_ = false;
  bool chunked_open_ = false;
  std::atomic<bool> responded_{false};
  std::mutex close_mu_;
  bool open_ = true;
  std::atomic<int64_t> idle_since_{0};  // NowTicks() while waiting for a request; 0 otherwise
  std::atomic<int64_t> io_since_{0};    // NowTicks() while a body read or answer write waits
};

void Server::Impl::Accept() {
  acceptor.async_accept(ioc, [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
    if (self->stopping || ec == net::error::operation_aborted) return;
    if (!ec) {
      beast::error_code oec;
      s.set_option(tcp::no_delay(true), oec);
      std::make_shared<Session>(self, std::move(s))->ReadHead();
    }
    self->Accept();
  });
}

void Server::Impl::Sweep() {
  // A quarter of the shorter limit: connections close between 1 and 1.25 times a limit.
  const int shorter =
      std::max(1, std::min(options.idle_timeout_seconds, options.stall_timeout_seconds));
  sweep_timer.expires_after(std::chrono::milliseconds(250 * shorter));
  sweep_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->stopping) return;
    const auto ticks = [](int seconds) {
      return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                 std::chrono::seconds(std::max(1, seconds)))
          .count();
    };
    const int64_t idle = ticks(self->options.idle_timeout_seconds);
    const int64_t stall = ticks(self->options.stall_timeout_seconds);
    {
      std::lock_guard lock(self->sessions_mu);
      const int64_t now = NowTicks();
      for (auto* session : self->sessions) session->ShutdownIfOverdue(now, idle, stall);
    }
    self->Sweep();
  });
}

Server::Server(ServerOptions options, Handlers handlers)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(handlers))) {}

Server::~Server() { Stop(); }

int Server::port() const { return impl_->port; }

bool Server::Listen() {
  auto& s = *impl_;
  beast::error_code ec;
  tcp::resolver resolver(s.ioc);
  const auto results =
      resolver.resolve(s.options.host, std::to_string(s.options.port), tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    spdlog::error("HTTP: cannot resolve '{}': {}", s.options.host, ec.message());
    return false;
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    spdlog::error("HTTP: cannot listen on {}:{}: {}", s.options.host, s.options.port, ec.message());
    return false;
  }
  s.port = s.acceptor.local_endpoint().port();
  return true;
}

void Server::Run() {
  auto& s = *impl_;
  s.work.emplace(s.ioc.get_executor());
  s.Accept();
  s.Sweep();
  for (int i = 0; i < std::max(1, s.options.workers); ++i) {
    s.workers.emplace_back([&s] { s.WorkerLoop(); });
  }
  for (int i = 0; i < std::max(1, s.options.io_threads); ++i) {
    s.io_threads.emplace_back([&s] { s.ioc.run(); });
  }
}

void Server::Stop() {
  auto& s = *impl_;
  if (s.stopping.exchange(true)) return;
  net::post(s.ioc, [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
    s.sweep_timer.cancel();
  });
  {
    std::lock_guard lock(s.sessions_mu);
    for (auto* session : s.sessions) session->Shutdown();
  }
  {
    std::lock_guard lock(s.mu);
    s.workers_stopping = true;
  }
  s.cv.notify_all();
  for (auto& t : s.workers) t.join();
  s.workers.clear();
  s.work.reset();
  for (auto& t : s.io_threads) t.join();
  s.io_threads.clear();
  // Handlers still queued hold sessions (and the sessions this Impl): drop them.
  s.ioc.restart();
  s.ioc.poll();
}

void Server::RunBlocking(std::function<void()> task) { impl_->Submit(std::move(task)); }

}  // namespace labelloop::gateway::http
