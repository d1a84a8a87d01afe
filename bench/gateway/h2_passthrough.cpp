// h2_passthrough: the floor under any gRPC gateway, for gateway_bench's "floor" target.
//
//   h2_passthrough LISTEN_PORT UPSTREAM_PORT
//
// A minimal HTTP/2 forwarder on nghttp2 and one epoll thread: every stream of every
// downstream connection is buffered until the caller half-closes, sent as a new stream on
// one upstream connection (127.0.0.1:UPSTREAM_PORT), and the upstream's headers, body and
// trailers are sent back as they came. No authentication, no policy, no parsing of the
// messages, no per-call threads: what is left is the one extra hop any gateway adds — a
// read and a write on each side and HTTP/2 framing per call. Unary calls only (what the
// benchmark sends); a benchmark tool, not a product.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Connection;

// One proxied call: the caller's stream and, once forwarded, the upstream stream.
struct Call {
  Connection* down = nullptr;
  int32_t down_id = 0;
  Headers request_headers, response_headers, trailers;
  std::string request, response;
  size_t request_sent = 0, response_sent = 0;
  bool forwarded = false;  // an upstream stream exists
  bool up_done = false;    // ... and has closed
  bool down_done = false;  // the caller's stream has closed
};

// A call ends once both of its streams have.
void Release(Call* call) {
  if (call->down_done && (!call->forwarded || call->up_done)) delete call;
}

struct Connection {
  int fd = -1;
  bool upstream = false;
  bool closed = false;
  nghttp2_session* session = nullptr;
  std::string pending;                           // bytes nghttp2 produced, not yet written
  std::unordered_map<int32_t, Call*> by_stream;  // downstream: caller's calls by stream id
  bool want_write = false;                       // registered for EPOLLOUT
};

int g_epoll = -1;
Connection* g_upstream = nullptr;
std::vector<Connection*> g_to_flush;  // connections with frames submitted this round

nghttp2_nv Nv(const std::string& name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

std::vector<nghttp2_nv> Nvs(const Headers& headers) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size());
  for (const auto& [k, v] : headers) nv.push_back(Nv(k, v));
  return nv;
}

void Watch(Connection* c, bool write) {
  epoll_event ev{};
  ev.events = EPOLLIN | (write ? EPOLLOUT : 0u);
  ev.data.ptr = c;
  epoll_ctl(g_epoll, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_write = write;
}

// Writes what nghttp2 has queued; waits for EPOLLOUT when the socket is full.
void Flush(Connection* c) {
  if (c->closed) return;
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(c->session, &data);
    if (n <= 0) break;
    c->pending.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  size_t off = 0;
  while (off < c->pending.size()) {
    const ssize_t w = ::send(c->fd, c->pending.data() + off, c->pending.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) break;  // EAGAIN (or a broken peer, seen on the next read)
    off += static_cast<size_t>(w);
  }
  c->pending.erase(0, off);
  const bool need = !c->pending.empty();
  if (need != c->want_write) Watch(c, need);
}

ssize_t ReadRequest(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                    nghttp2_data_source* source, void*) {
  auto* call = static_cast<Call*>(source->ptr);
  const size_t n = std::min(len, call->request.size() - call->request_sent);
  std::memcpy(buf, call->request.data() + call->request_sent, n);
  call->request_sent += n;
  if (call->request_sent == call->request.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

ssize_t ReadResponse(nghttp2_session* session, int32_t stream, uint8_t* buf, size_t len,
                     uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* call = static_cast<Call*>(source->ptr);
  const size_t n = std::min(len, call->response.size() - call->response_sent);
  std::memcpy(buf, call->response.data() + call->response_sent, n);
  call->response_sent += n;
  if (call->response_sent == call->response.size()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    auto nv = Nvs(call->trailers);
    nghttp2_submit_trailer(session, stream, nv.data(), nv.size());
  }
  return static_cast<ssize_t>(n);
}

void Forward(Call* call) {
  auto nv = Nvs(call->request_headers);
  nghttp2_data_provider body{};
  body.source.ptr = call;
  body.read_callback = ReadRequest;
  if (nghttp2_submit_request(g_upstream->session, nullptr, nv.data(), nv.size(), &body, call) < 0) {
    std::fprintf(stderr, "h2_passthrough: upstream refused a stream\n");
    std::exit(1);
  }
  call->forwarded = true;
  g_to_flush.push_back(g_upstream);
}

void Answer(Call* call) {
  if (call->down == nullptr) return;  // the caller went away meanwhile
  if (call->response_headers.empty()) std::swap(call->response_headers, call->trailers);
  auto nv = Nvs(call->response_headers);
  nghttp2_data_provider body{};
  body.source.ptr = call;
  body.read_callback = ReadResponse;
  const bool has_body = !call->response.empty() || !call->trailers.empty();
  nghttp2_submit_response(call->down->session, call->down_id, nv.data(), nv.size(),
                          has_body ? &body : nullptr);
  g_to_flush.push_back(call->down);
}

Call* CallOf(nghttp2_session* session, Connection* c, int32_t stream) {
  if (c->upstream) return static_cast<Call*>(nghttp2_session_get_stream_user_data(session, stream));
  auto it = c->by_stream.find(stream);
  return it == c->by_stream.end() ? nullptr : it->second;
}

int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<Connection*>(user);
  if (!c->upstream && frame->hd.type == NGHTTP2_HEADERS &&
      frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    auto* call = new Call;
    call->down = c;
    call->down_id = frame->hd.stream_id;
    c->by_stream[frame->hd.stream_id] = call;
  }
  return 0;
}

int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
             size_t name_len, const uint8_t* value, size_t value_len, uint8_t, void* user) {
  auto* c = static_cast<Connection*>(user);
  Call* call = CallOf(session, c, frame->hd.stream_id);
  if (call == nullptr) return 0;
  std::string k(reinterpret_cast<const char*>(name), name_len);
  std::string v(reinterpret_cast<const char*>(value), value_len);
  Headers& into = !c->upstream                                 ? call->request_headers
                  : frame->headers.cat == NGHTTP2_HCAT_HEADERS ? call->trailers
                                                               : call->response_headers;
  into.emplace_back(std::move(k), std::move(v));
  return 0;
}

int OnData(nghttp2_session* session, uint8_t, int32_t stream, const uint8_t* data, size_t len,
           void* user) {
  auto* c = static_cast<Connection*>(user);
  Call* call = CallOf(session, c, stream);
  if (call != nullptr) {
    (c->upstream ? call->response : call->request).append(reinterpret_cast<const char*>(data), len);
  }
  return 0;
}

int OnFrame(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<Connection*>(user);
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return 0;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  Call* call = CallOf(session, c, frame->hd.stream_id);
  if (call == nullptr) return 0;
  if (c->upstream) {
    Answer(call);
  } else {
    Forward(call);
  }
  return 0;
}

int OnStreamClose(nghttp2_session* session, int32_t stream, uint32_t, void* user) {
  auto* c = static_cast<Connection*>(user);
  Call* call = CallOf(session, c, stream);
  if (call == nullptr) return 0;
  if (c->upstream) {
    call->up_done = true;
  } else {
    c->by_stream.erase(stream);
    call->down = nullptr;
    call->down_done = true;
  }
  Release(call);
  return 0;
}

nghttp2_session_callbacks* Callbacks() {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, OnData);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, OnFrame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, OnStreamClose);
  return cb;
}

// Large windows: the benchmark's messages never wait on flow control.
void SendSettings(Connection* c) {
  nghttp2_settings_entry entries[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 4096},
                                      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, entries, 2);
  nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 1 << 28);
}

Connection* Add(int fd, bool upstream, nghttp2_session_callbacks* cb) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto* c = new Connection;
  c->fd = fd;
  c->upstream = upstream;
  if (upstream) {
    nghttp2_session_client_new(&c->session, cb, c);
  } else {
    nghttp2_session_server_new(&c->session, cb, c);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c;
  epoll_ctl(g_epoll, EPOLL_CTL_ADD, fd, &ev);
  SendSettings(c);
  Flush(c);
  return c;
}

void Close(Connection* c) {
  if (c->upstream) {
    std::fprintf(stderr, "h2_passthrough: the upstream connection closed\n");
    std::exit(1);
  }
  epoll_ctl(g_epoll, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  c->closed = true;
  for (auto& [stream, call] : c->by_stream) {
    call->down = nullptr;
    call->down_done = true;
    Release(call);
  }
  c->by_stream.clear();
  nghttp2_session_del(c->session);
  c->session = nullptr;
  // Deleted after this round (it may still be listed in g_to_flush).
}

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: h2_passthrough LISTEN_PORT UPSTREAM_PORT\n");
    return 2;
  }
  const int listen_port = std::atoi(argv[1]);
  const int upstream_port = std::atoi(argv[2]);
  nghttp2_session_callbacks* cb = Callbacks();
  g_epoll = epoll_create1(EPOLL_CLOEXEC);

  const int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = Loopback(upstream_port);
  if (connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("h2_passthrough: connect to upstream");
    return 1;
  }
  fcntl(up, F_SETFL, fcntl(up, F_GETFL) | O_NONBLOCK);
  g_upstream = Add(up, true, cb);

  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  addr = Loopback(listen_port);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 256) != 0) {
    std::perror("h2_passthrough: listen");
    return 1;
  }
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;
  epoll_ctl(g_epoll, EPOLL_CTL_ADD, listener, &lev);

  std::vector<Connection*> closed;
  std::vector<char> buf(1 << 16);
  epoll_event events[64];
  for (;;) {
    const int n = epoll_wait(g_epoll, events, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Connection*>(events[i].data.ptr);
      if (c == nullptr) {
        const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) Add(fd, false, cb);
        continue;
      }
      if (c->closed) continue;
      if ((events[i].events & EPOLLOUT) != 0) g_to_flush.push_back(c);
      if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0) continue;
      for (;;) {
        const ssize_t r = ::recv(c->fd, buf.data(), buf.size(), 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r <= 0 || nghttp2_session_mem_recv(c->session, reinterpret_cast<uint8_t*>(buf.data()),
                                               static_cast<size_t>(r)) < 0) {
          Close(c);
          closed.push_back(c);
          break;
        }
        if (static_cast<size_t>(r) < buf.size()) break;
      }
      g_to_flush.push_back(c);
    }
    // Everything submitted in this round goes out in one write per connection.
    std::sort(g_to_flush.begin(), g_to_flush.end());
    g_to_flush.erase(std::unique(g_to_flush.begin(), g_to_flush.end()), g_to_flush.end());
    for (Connection* c : g_to_flush) Flush(c);
    g_to_flush.clear();
    for (Connection* c : closed) delete c;
    closed.clear();
  }
}
