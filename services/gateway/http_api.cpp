#include "services/gateway/http_api.hpp"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/sync_stream.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "common/grpc_server/request_context.hpp"
#include "common/log/log.hpp"
#include "labelloop/v1/gateway.pb.h"
#include "services/gateway/http_status.hpp"
#include "services/gateway/json_print.hpp"
#include "services/gateway/proto_util.hpp"

namespace labelloop::gateway {
namespace pb = google::protobuf;

namespace {

using ByteStream = grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

std::unique_ptr<ByteStream> OpenStream(grpc::Channel* channel, const std::string& method,
                                       grpc::ClientContext* ctx) {
  return std::unique_ptr<ByteStream>(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel,
          grpc::internal::RpcMethod(method.c_str(), grpc::internal::RpcMethod::BIDI_STREAMING),
          ctx));
}

std::string ToJson(const pb::Message& m) { return MessageToJson(m); }

// JSON text → message; an error message naming the problem on failure.
std::string FromJson(const std::string& json, pb::Message* m) {
  std::string text = json;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) text = "{}";
  auto s = pb::util::JsonStringToMessage(text, m);
  if (!s.ok()) {
    return "request body is not a valid " + m->GetDescriptor()->full_name() +
           " in JSON: " + std::string(s.message());
  }
  return "";
}

}  // namespace

struct HttpApi::Impl {
  HttpOptions options;
  Gate& gate;
  EventHub& hub;
  std::function<int()> grpc_port;
  std::string grpc_host;
  std::function<bool()> healthy;
  std::function<void(v1::ServiceInfo*)> fill_info;
  httplib::Server server;
  std::mutex self_mu;
  std::shared_ptr<grpc::Channel> self_channel;

  Impl(HttpOptions o, Gate& g, EventHub& h, std::function<int()> port, std::string host,
       std::function<bool()> ok, std::function<void(v1::ServiceInfo*)> info)
      : options(std::move(o)),
        gate(g),
        hub(h),
        grpc_port(std::move(port)),
        grpc_host(std::move(host)),
        healthy(std::move(ok)),
        fill_info(std::move(info)) {}

  std::shared_ptr<grpc::Channel> SelfChannel() {
    std::lock_guard lock(self_mu);
    if (!self_channel) {
      const bool any = grpc_host.empty() || grpc_host == "0.0.0.0" || grpc_host == "::";
      self_channel = grpc::CreateChannel(
          (any ? std::string("127.0.0.1") : grpc_host) + ":" + std::to_string(grpc_port()),
          grpc::InsecureChannelCredentials());
    }
    return self_channel;
  }

  static std::string RequestId(const httplib::Request& req) {
    auto id = req.get_header_value("x-request-id");
    return !id.empty() && id.size() <= 128 ? id : grpc_server::NewRequestId();
  }

  static Credentials CredentialsOf(const httplib::Request& req, bool allow_query_token) {
    Credentials c{req.get_header_value("authorization"), req.get_header_value("x-api-key")};
    // EventSource (browsers) cannot send headers: SSE routes accept ?access_token=.
    if (allow_query_token && c.authorization.empty() && c.api_key.empty() &&
        req.has_param("access_token")) {
      c.authorization = "Bearer " + req.get_param_value("access_token");
    }
    return c;
  }

  void Error(httplib::Response& res, const grpc::Status& s, const std::string& request_id,
             int64_t retry_after = 0) {
    const int code = static_cast<int>(s.error_code());
    res.status = HttpStatusFor(code);
    if (retry_after > 0) res.set_header("Retry-After", std::to_string(retry_after));
    res.set_content(ErrorJson(code, s.error_message(), request_id), "application/json");
    spdlog::info("HTTP {} → {} {}", res.status, GrpcCodeName(code), s.error_message());
  }

  void Cors(const httplib::Request& req, httplib::Response& res) const {
    if (options.cors_origins.empty()) return;
    const auto origin = req.get_header_value("Origin");
    if (origin.empty()) return;
    bool ok = false;
    for (const auto& o : options.cors_origins) ok = ok || o == "*" || o == origin;
    if (!ok) return;
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Vary", "Origin");
    res.set_header("Access-Control-Expose-Headers", "x-request-id, retry-after");
  }

  // GatewayService over HTTP: the gateway's own gRPC port does the work.
  void SelfUnary(const httplib::Request& req, httplib::Response& res, const std::string& method,
                 const std::string& body, const std::string& request_id) {
    const auto* m = pb::DescriptorPool::generated_pool()->FindMethodByName(
        "labelloop.v1.GatewayService." + method);
    if (m == nullptr || m->client_streaming() || m->server_streaming()) {
      Error(res, {grpc::StatusCode::NOT_FOUND, "no such method: GatewayService/" + method},
            request_id);
      return;
    }
    auto in = NewMessage(m->input_type());
    if (auto e = FromJson(body, in.get()); !e.empty()) {
      Error(res, {grpc::StatusCode::INVALID_ARGUMENT, e}, request_id);
      return;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const auto creds = CredentialsOf(req, false);
    if (!creds.authorization.empty()) ctx.AddMetadata("authorization", creds.authorization);
    if (!creds.api_key.empty()) ctx.AddMetadata("x-api-key", creds.api_key);
    ctx.AddMetadata("x-request-id", request_id);
    ctx.AddMetadata("x-labelloop-internal", options.internal_secret);
    ctx.AddMetadata("x-labelloop-client-ip", req.remote_addr);
    auto channel = SelfChannel();
    auto stream = OpenStream(channel.get(), "/labelloop.v1.GatewayService/" + method, &ctx);
    grpc::ByteBuffer out_buf = ToBuffer(in->SerializeAsString());
    stream->WriteLast(out_buf, grpc::WriteOptions());
    grpc::ByteBuffer resp;
    const bool got = stream->Read(&resp);
    grpc::Status s = stream->Finish();
    if (!s.ok() || !got) {
      int64_t retry_after = 0;
      auto it = ctx.GetServerTrailingMetadata().find("retry-after");
      if (it != ctx.GetServerTrailingMetadata().end()) {
        retry_after = std::atoll(std::string(it->second.data(), it->second.size()).c_str());
      }
      Error(res, s.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "empty answer") : s, request_id,
            retry_after);
      return;
    }
    auto out = NewMessage(m->output_type());
    out->ParseFromString(ToString(resp));
    res.set_content(ToJson(*out), "application/json");
  }

  void WatchSse(const httplib::Request& req, httplib::Response& res, const std::string& body,
                const std::string& request_id) {
    v1::WatchProjectRequest w;
    if (req.method == "GET") {
      if (req.has_param("project_id")) {
        w.set_project_id(std::atoll(req.get_param_value("project_id").c_str()));
      }
      for (size_t i = 0; i < req.get_param_value_count("types"); ++i) {
        w.add_types(req.get_param_value("types", i));
      }
    } else if (auto e = FromJson(body, &w); !e.empty()) {
      Error(res, {grpc::StatusCode::INVALID_ARGUMENT, e}, request_id);
      return;
    }
    Principal caller;
    int64_t retry_after = 0;
    auto s = gate.Authenticate(CredentialsOf(req, true), &caller, &retry_after);
    if (s.ok() && w.project_id() <= 0) {
      s = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "project_id: required");
    }
    if (s.ok() && caller.role != Role::kAdmin) {
      try {
        if (!gate.authn().Membership(caller, w.project_id())) {
          s = grpc::Status(grpc::StatusCode::NOT_FOUND,
                           "project " + std::to_string(w.project_id()) + " not found");
        }
      } catch (const std::exception& e) {
        s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway database unavailable");
      }
    }
    if (!s.ok()) {
      Error(res, s, request_id, retry_after);
      return;
    }
    std::set<std::string> types(w.types().begin(), w.types().end());
    auto watcher = hub.Watch(w.project_id(), types);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [watcher, first = true](size_t, httplib::DataSink& sink) mutable {
          if (first) {
            first = false;
            const std::string hello =
                ": watching project " + std::to_string(watcher->project_id()) + "\n\n";
            return sink.write(hello.data(), hello.size());
          }
          ProjectEventData ev;
          switch (watcher->Wait(std::chrono::seconds(15), &ev)) {
            case EventHub::Watcher::Next::kClosed:
              sink.done();
              return true;
            case EventHub::Watcher::Next::kTimeout: {
              static const std::string kPing = ": ping\n\n";
              return sink.write(kPing.data(), kPing.size());
            }
            case EventHub::Watcher::Next::kEvent:
              break;
          }
          const std::string text = "event: " + ev.type + "\ndata: " + ev.json + "\n\n";
          return sink.write(text.data(), text.size());
        },
        [this, watcher](bool) { hub.Unwatch(watcher); });
  }

  void Unary(const httplib::Request& req, httplib::Response& res, const Route& route,
             const std::string& body, const std::string& request_id) {
    auto in = NewMessage(route.method->input_type());
    if (auto e = FromJson(body, in.get()); !e.empty()) {
      Error(res, {grpc::StatusCode::INVALID_ARGUMENT, e}, request_id);
      return;
    }
    std::string bytes = in->SerializeAsString();
    Admission adm;
    adm.request_id = request_id;
    int64_t retry_after = 0;
    auto s = gate.Admit(route, CredentialsOf(req, false), &bytes, &adm, &retry_after);
    if (!s.ok()) {
      res.set_header("x-labelloop-refused-by", "gateway");
      Error(res, s, request_id, retry_after);
      return;
    }
    std::string answer;
    s = gate.CallUnary(*route.backend, route.policy.method, bytes, &answer, &adm);
    if (s.ok()) s = gate.AfterResponse(route, adm, &answer);
    if (!s.ok()) {
      Error(res, s, request_id);
      return;
    }
    auto out = NewMessage(route.method->output_type());
    out->ParseFromString(answer);
    res.set_content(ToJson(*out), "application/json");
  }

  // Server stream → Server-Sent Events (`data: <message JSON>` each, then `event: end` or
  // `event: error`), or with ?raw=1 and a `bytes data` field in the answers, the bytes.
  void ServerStream(const httplib::Request& req, httplib::Response& res, const Route& route,
                    const std::string& body, const std::string& request_id) {
    auto in = NewMessage(route.method->input_type());
    std::string parse_error;
    if (req.method == "GET") {
      // Query parameters as the fields of the request (integers and strings).
      nlohmann_free_query(req, in.get());
    } else {
      parse_error = FromJson(body, in.get());
    }
    if (!parse_error.empty()) {
      Error(res, {grpc::StatusCode::INVALID_ARGUMENT, parse_error}, request_id);
      return;
    }
    std::string bytes = in->SerializeAsString();
    auto adm = std::make_shared<Admission>();
    adm->request_id = request_id;
    int64_t retry_after = 0;
    auto s = gate.Admit(route, CredentialsOf(req, true), &bytes, adm.get(), &retry_after);
    if (!s.ok()) {
      res.set_header("x-labelloop-refused-by", "gateway");
      Error(res, s, request_id, retry_after);
      return;
    }
    const auto* data_field = route.method->output_type()->FindFieldByName("data");
    const bool raw = req.get_param_value("raw") == "1" && data_field != nullptr &&
                     data_field->type() == pb::FieldDescriptor::TYPE_BYTES;
    struct StreamState {
      grpc::ClientContext ctx;
      std::unique_ptr<ByteStream> stream;
      bool ended = false;
    };
    auto st = std::make_shared<StreamState>();
    gate.PrepareContext(&st->ctx, route, *adm, std::chrono::system_clock::time_point::max());
    st->stream = OpenStream(route.backend->channel.get(), route.policy.method, &st->ctx);
    grpc::ByteBuffer first = ToBuffer(bytes);
    st->stream->WriteLast(first, grpc::WriteOptions());
    const Route* r = &route;
    auto provider = [this, st, r, raw, data_field](size_t, httplib::DataSink& sink) {
      if (st->ended) {
        sink.done();
        return true;
      }
      grpc::ByteBuffer buf;
      if (st->stream->Read(&buf)) {
        auto msg = NewMessage(r->method->output_type());
        msg->ParseFromString(ToString(buf));
        if (raw) {
          const std::string data = msg->GetReflection()->GetString(*msg, data_field);
          return sink.write(data.data(), data.size());
        }
        const std::string text = "data: " + ToJson(*msg) + "\n\n";
        return sink.write(text.data(), text.size());
      }
      st->ended = true;
      grpc::Status s = gate.MapBackendStatus(*r->backend, st->stream->Finish());
      if (!raw) {
        const int code = static_cast<int>(s.error_code());
        const std::string text =
            s.ok() ? std::string("event: end\ndata: {\"code\":\"OK\"}\n\n")
                   : "event: error\ndata: " + ErrorJson(code, s.error_message(), "") + "\n\n";
        sink.write(text.data(), text.size());
      }
      sink.done();
      return s.ok() || !raw;
    };
    if (raw) {
      res.set_chunked_content_provider("application/octet-stream", provider,
                                       [st](bool) { st->ctx.TryCancel(); });
    } else {
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider("text/event-stream", provider,
                                       [st](bool) { st->ctx.TryCancel(); });
    }
  }

  static void nlohmann_free_query(const httplib::Request& req, pb::Message* m) {
    const auto* d = m->GetDescriptor();
    for (const auto& [key, value] : req.params) {
      const auto* f = d->FindFieldByName(key);
      if (f == nullptr || f->is_repeated()) continue;
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_INT64:
          m->GetReflection()->SetInt64(m, f, std::atoll(value.c_str()));
          break;
        case pb::FieldDescriptor::CPPTYPE_INT32:
          m->GetReflection()->SetInt32(m, f, std::atoi(value.c_str()));
          break;
        case pb::FieldDescriptor::CPPTYPE_STRING:
          m->GetReflection()->SetString(m, f, value);
          break;
        case pb::FieldDescriptor::CPPTYPE_BOOL:
          m->GetReflection()->SetBool(m, f, value == "1" || value == "true");
          break;
        default:
          break;
      }
    }
  }

  // Client stream from the request body: NDJSON (one message per line) when the
  // content type is application/x-ndjson; otherwise the first message is the JSON of
  // the x-labelloop-first-message header (or ?first=) and the raw body is streamed in
  // pieces into the request's bytes field (e.g. Upload: header first, then chunks).
  void ClientStream(const httplib::Request& req, httplib::Response& res, const Route& route,
                    const httplib::ContentReader& reader, const std::string& request_id) {
    const auto* type = route.method->input_type();
    const bool ndjson = req.get_header_value("Content-Type").find("ndjson") != std::string::npos;
    const pb::FieldDescriptor* bytes_field = nullptr;
    for (int i = 0; i < type->field_count(); ++i) {
      if (type->field(i)->type() == pb::FieldDescriptor::TYPE_BYTES &&
          !type->field(i)->is_repeated()) {
        bytes_field = type->field(i);
      }
    }
    if (!ndjson && bytes_field == nullptr) {
      Error(res,
            {grpc::StatusCode::INVALID_ARGUMENT,
             "send the messages as application/x-ndjson (one JSON message per line)"},
            request_id);
      return;
    }
    Admission adm;
    adm.request_id = request_id;
    grpc::ClientContext ctx;
    std::unique_ptr<ByteStream> stream;
    grpc::Status status;
    int64_t retry_after = 0;
    bool admitted = false;
    // Sends one message; the first one passes the gate and opens the stream.
    auto send = [&](std::string bytes) -> bool {
      if (!admitted) {
        status = gate.Admit(route, CredentialsOf(req, false), &bytes, &adm, &retry_after);
        if (!status.ok()) return false;
        admitted = true;
        gate.PrepareContext(&ctx, route, adm, std::chrono::system_clock::time_point::max());
        stream = OpenStream(route.backend->channel.get(), route.policy.method, &ctx);
      } else {
        status = gate.CheckNext(route, adm, bytes);
        if (!status.ok()) return false;
      }
      return stream->Write(ToBuffer(bytes));
    };
    std::string pending;
    bool broken = false;
    if (ndjson) {
      auto flush_lines = [&](bool final_part) {
        size_t pos;
        while (!broken && ((pos = pending.find('\n')) != std::string::npos ||
                           (final_part && !pending.empty()))) {
          std::string line = pos == std::string::npos ? pending : pending.substr(0, pos);
          pending.erase(0, pos == std::string::npos ? pending.size() : pos + 1);
          if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
          auto msg = NewMessage(type);
          if (auto e = FromJson(line, msg.get()); !e.empty()) {
            status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e);
            broken = true;
          } else if (!send(msg->SerializeAsString())) {
            broken = true;
          }
        }
      };
      reader([&](const char* data, size_t len) {
        pending.append(data, len);
        flush_lines(false);
        return !broken;
      });
      if (!broken) flush_lines(true);
    } else {
      auto first = NewMessage(type);
      std::string first_json = req.get_header_value("x-labelloop-first-message");
      if (first_json.empty()) first_json = req.get_param_value("first");
      if (auto e = FromJson(first_json, first.get()); !e.empty()) {
        Error(res, {grpc::StatusCode::INVALID_ARGUMENT, "x-labelloop-first-message: " + e},
              request_id);
        return;
      }
      broken = !send(first->SerializeAsString());
      auto send_chunk = [&](std::string chunk) {
        auto msg = NewMessage(type);
        msg->GetReflection()->SetString(msg.get(), bytes_field, std::move(chunk));
        if (!send(msg->SerializeAsString())) broken = true;
      };
      if (!broken) {
        reader([&](const char* data, size_t len) {
          pending.append(data, len);
          while (!broken && pending.size() >= options.upload_message_bytes) {
            send_chunk(pending.substr(0, options.upload_message_bytes));
            pending.erase(0, options.upload_message_bytes);
          }
          return !broken;
        });
        if (!broken && !pending.empty()) send_chunk(std::move(pending));
      }
    }
    if (!admitted) {
      if (status.ok()) status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no messages");
      Error(res, status, request_id, retry_after);
      return;
    }
    if (broken && !status.ok()) ctx.TryCancel();
    stream->WritesDone();
    grpc::ByteBuffer resp;
    const bool got = stream->Read(&resp);
    grpc::Status s = stream->Finish();
    if (!status.ok()) s = status;
    if (!s.ok() || !got) {
      Error(res,
            s.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "empty answer")
                   : gate.MapBackendStatus(*route.backend, s),
            request_id);
      return;
    }
    auto out = NewMessage(route.method->output_type());
    out->ParseFromString(ToString(resp));
    res.set_content(ToJson(*out), "application/json");
  }

  void Handle(const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader* reader) {
    const std::string request_id = RequestId(req);
    log::ScopedRequestId scope(request_id);
    res.set_header("x-request-id", request_id);
    Cors(req, res);
    const std::string service = req.matches[1];
    const std::string method = req.matches[2];
    const Route* route = service == "GatewayService" ? nullptr : gate.FindHttp(req.path);
    const bool client_stream = route != nullptr && route->client_streaming;
    std::string body;
    if (reader != nullptr && !client_stream) {
      (*reader)([&](const char* data, size_t len) {
        body.append(data, len);
        return body.size() <= (64u << 20);
      });
    }
    try {
      if (service == "GatewayService") {
        if (method == "WatchProject") return WatchSse(req, res, body, request_id);
        if (req.method != "POST") {
          return Error(res, {grpc::StatusCode::INVALID_ARGUMENT, "use POST"}, request_id);
        }
        return SelfUnary(req, res, method, body, request_id);
      }
      if (route == nullptr) {
        return Error(res,
                     {grpc::StatusCode::NOT_FOUND, "no such method: " + service + "/" + method +
                                                       " (not part of the public API)"},
                     request_id);
      }
      if (route->server_streaming) return ServerStream(req, res, *route, body, request_id);
      if (req.method != "POST") {
        return Error(res, {grpc::StatusCode::INVALID_ARGUMENT, "use POST"}, request_id);
      }
      if (client_stream) return ClientStream(req, res, *route, *reader, request_id);
      return Unary(req, res, *route, body, request_id);
    } catch (const std::exception& e) {
      spdlog::error("HTTP {}: {}", req.path, e.what());
      Error(res, {grpc::StatusCode::INTERNAL, "internal error"}, request_id);
    }
  }
};

HttpApi::HttpApi(HttpOptions options, Gate& gate, EventHub& hub, std::function<int()> grpc_port,
                 std::string grpc_host, std::function<bool()> healthy,
                 std::function<void(v1::ServiceInfo*)> fill_info)
    : impl_(std::make_unique<Impl>(std::move(options), gate, hub, std::move(grpc_port),
                                   std::move(grpc_host), std::move(healthy),
                                   std::move(fill_info))) {}

HttpApi::~HttpApi() { Stop(); }

bool HttpApi::Start() {
  auto& srv = impl_->server;
  auto* impl = impl_.get();
  const int threads = std::max(4, impl->options.threads);
  srv.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  srv.set_keep_alive_max_count(1000000);
  srv.set_keep_alive_timeout(60);
  srv.set_read_timeout(60);
  srv.set_write_timeout(60);
  srv.set_payload_max_length(std::numeric_limits<size_t>::max());
  // Responses go out as a header write then a body write: without TCP_NODELAY the body
  // waits on the client's delayed ACK. Accepted sockets inherit it from the listener.
  srv.set_tcp_nodelay(true);
  // The listening socket, captured when httplib creates it (shared: the callback outlives
  // this call).
  auto listen_fd = std::make_shared<int>(-1);
  srv.set_socket_options([listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    *listen_fd = sock;
  });
  const std::string pattern = R"(/v1/([A-Za-z]+)/([A-Za-z]+))";
  srv.Post(pattern,
           [impl](const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& reader) { impl->Handle(req, res, &reader); });
  srv.Get(pattern, [impl](const httplib::Request& req, httplib::Response& res) {
    impl->Handle(req, res, nullptr);
  });
  srv.Options(R"(.*)", [impl](const httplib::Request& req, httplib::Response& res) {
    impl->Cors(req, res);
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers",
                   "authorization, content-type, x-api-key, x-request-id, "
                   "x-labelloop-first-message");
    res.set_header("Access-Control-Max-Age", "600");
    res.status = 204;
  });
  srv.Get("/v1/info", [impl](const httplib::Request& req, httplib::Response& res) {
    impl->Cors(req, res);
    v1::ServiceInfo info;
    impl->fill_info(&info);
    res.set_content(ToJson(info), "application/json");
  });
  srv.Get("/healthz", [impl](const httplib::Request&, httplib::Response& res) {
    const bool ok = impl->healthy();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "SERVING\n" : "NOT_SERVING\n", "text/plain");
  });
  if (impl->options.port == 0) {
    port_ = srv.bind_to_any_port(impl->options.host);
    if (port_ <= 0) return false;
  } else {
    if (!srv.bind_to_port(impl->options.host, impl->options.port)) return false;
    port_ = impl->options.port;
  }
  // Debian's cpp-httplib is a shared library built with a listen backlog of 5: 64 clients
  // connecting at once overflow it, and each dropped handshake is retried by the kernel
  // only after 1 s (the whole p99 of the benchmark). Linux lets a listening socket raise
  // its backlog by calling listen() again.
  if (*listen_fd >= 0 && ::listen(*listen_fd, SOMAXCONN) != 0) {
    spdlog::warn("HTTP listen backlog stays at cpp-httplib's 5: {}", std::strerror(errno));
  }
  thread_ = std::thread([&srv] { srv.listen_after_bind(); });
  return true;
}

void HttpApi::Stop() {
  impl_->server.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace labelloop::gateway
