#include "services/gateway/http_api.hpp"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/sync_stream.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "common/grpc_server/request_context.hpp"
#include "common/log/log.hpp"
#include "labelloop/v1/gateway.pb.h"
#include "services/gateway/completion_tag.hpp"
#include "services/gateway/http_server.hpp"
#include "services/gateway/http_status.hpp"
#include "services/gateway/json_parse.hpp"
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
  auto e = JsonToMessage(json, m);
  if (e.empty()) return "";
  return "request body is not a valid " + m->GetDescriptor()->full_name() + " in JSON: " + e;
}

}  // namespace

// A proxied unary call in flight: started on an HTTP I/O thread (or a worker when the
// gate has to wait on the database), finished on the thread polling the gateway's
// completion queue (the gRPC proxy's), which also writes the answer.
struct PendingCall final : CompletionTag {
  explicit PendingCall(HttpApi::Impl* i) : impl(i) {}
  void Complete(bool ok) override;

  HttpApi::Impl* impl;
  grpc::ClientContext ctx;
  grpc::ByteBuffer answer;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  std::shared_ptr<http::Exchange> exchange;
  const Route* route = nullptr;
  std::string request;  // serialized, as the gate may have rewritten it
  Credentials credentials;
  Admission adm;
  http::Response head;  // x-request-id, CORS
};

struct HttpApi::Impl {
  HttpOptions options;
  Gate& gate;
  EventHub& hub;
  std::function<int()> grpc_port;
  std::string grpc_host;
  std::function<bool()> healthy;
  std::function<void(v1::ServiceInfo*)> fill_info;
  std::unique_ptr<http::Server> server;
  std::mutex self_mu;
  std::shared_ptr<grpc::Channel> self_channel;
  grpc::CompletionQueue* cq = nullptr;  // the proxy's, once serving
  std::mutex inflight_mu;
  std::condition_variable inflight_cv;
  int64_t inflight = 0;

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

  // "/v1/<Service>/<Method>" (letters only) → service and method; false otherwise.
  static bool SplitApiPath(const std::string& path, std::string* service, std::string* method) {
    constexpr std::string_view kPrefix = "/v1/";
    if (path.compare(0, kPrefix.size(), kPrefix) != 0) return false;
    const size_t slash = path.find('/', kPrefix.size());
    if (slash == std::string::npos) return false;
    auto letters = [](std::string_view s) {
      if (s.empty()) return false;
      for (char c : s) {
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
      }
      return true;
    };
    const std::string_view p(path);
    const auto svc = p.substr(kPrefix.size(), slash - kPrefix.size());
    const auto m = p.substr(slash + 1);
    if (!letters(svc) || !letters(m)) return false;
    *service = std::string(svc);
    *method = std::string(m);
    return true;
  }

  static std::string RequestId(const http::Request& req) {
    auto id = req.Header("x-request-id");
    return !id.empty() && id.size() <= 128 ? id : grpc_server::NewRequestId();
  }

  static Credentials CredentialsOf(const http::Request& req, bool allow_query_token) {
    Credentials c{req.Header("authorization"), req.Header("x-api-key")};
    // EventSource (browsers) cannot send headers: SSE routes accept ?access_token=.
    if (allow_query_token && c.authorization.empty() && c.api_key.empty() &&
        req.HasParam("access_token")) {
      c.authorization = "Bearer " + req.Param("access_token");
    }
    return c;
  }

  static void Error(http::Response& res, const grpc::Status& s, const std::string& request_id,
                    int64_t retry_after = 0) {
    const int code = static_cast<int>(s.error_code());
    res.status = HttpStatusFor(code);
    if (retry_after > 0) res.SetHeader("Retry-After", std::to_string(retry_after));
    res.SetContent(ErrorJson(code, s.error_message(), request_id), "application/json");
    spdlog::info("HTTP {} → {} {}", res.status, GrpcCodeName(code), s.error_message());
  }

  void Cors(const http::Request& req, http::Response& res) const {
    if (options.cors_origins.empty()) return;
    const auto origin = req.Header("origin");
    if (origin.empty()) return;
    bool ok = false;
    for (const auto& o : options.cors_origins) ok = ok || o == "*" || o == origin;
    if (!ok) return;
    res.SetHeader("Access-Control-Allow-Origin", origin);
    res.SetHeader("Vary", "Origin");
    res.SetHeader("Access-Control-Expose-Headers", "x-request-id, retry-after");
  }

  // The headers every answer to an API call carries.
  http::Response Head(const http::Request& req, const std::string& request_id) const {
    http::Response res;
    res.SetHeader("x-request-id", request_id);
    Cors(req, res);
    return res;
  }

  // Proxied unary calls (the load the gateway is sized for) are buffered and answered
  // asynchronously; everything that blocks or streams runs on a worker thread.
  http::Mode Classify(const http::Request& req) const {
    std::string service, method;
    if (req.method == "OPTIONS" || !SplitApiPath(req.path, &service, &method)) {
      return req.path == "/healthz" || req.path == "/v1/info" ? http::Mode::kStreamed
                                                              : http::Mode::kBuffered;
    }
    if (service == "GatewayService") return http::Mode::kStreamed;
    const Route* route = gate.FindHttp(req.path);
    if (route == nullptr) return http::Mode::kBuffered;
    // Server streams are read with GET too (EventSource, raw downloads).
    return route->server_streaming || (route->client_streaming && req.method == "POST")
               ? http::Mode::kStreamed
               : http::Mode::kBuffered;
  }

  // --- buffered requests (on an HTTP I/O thread) -------------------------------------

  void HandleBuffered(const std::shared_ptr<http::Exchange>& ex) {
    const auto& req = ex->request();
    if (req.method == "OPTIONS") {
      http::Response res;
      Cors(req, res);
      res.SetHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.SetHeader("Access-Control-Allow-Headers",
                    "authorization, content-type, x-api-key, x-request-id, "
                    "x-labelloop-first-message");
      res.SetHeader("Access-Control-Max-Age", "600");
      res.status = 204;
      return ex->Respond(std::move(res));
    }
    std::string service, method;
    if (!SplitApiPath(req.path, &service, &method) ||
        (req.method != "GET" && req.method != "POST")) {
      http::Response res;
      res.status = 404;
      return ex->Respond(std::move(res));
    }
    const std::string request_id = RequestId(req);
    log::ScopedRequestId scope(request_id);
    http::Response res = Head(req, request_id);
    try {
      const Route* route = gate.FindHttp(req.path);
      if (route == nullptr) {
        Error(res,
              {grpc::StatusCode::NOT_FOUND,
               "no such method: " + service + "/" + method + " (not part of the public API)"},
              request_id);
      } else if (req.method != "POST") {
        Error(res, {grpc::StatusCode::INVALID_ARGUMENT, "use POST"}, request_id);
      } else if (StartUnary(ex, *route, request_id, &res)) {
        return;  // answered when the backend answers
      }
    } catch (const std::exception& e) {
      spdlog::error("HTTP {}: {}", req.path, e.what());
      res = Head(req, request_id);
      Error(res, {grpc::StatusCode::INTERNAL, "internal error"}, request_id);
    }
    ex->Respond(std::move(res));
  }

  // Parses the call and admits it — from the gate's caches on this thread, or on a worker
  // when the gate needs the database or Redis — then starts it upstream (true), or sets
  // the error in *res.
  bool StartUnary(const std::shared_ptr<http::Exchange>& ex, const Route& route,
                  const std::string& request_id, http::Response* res) {
    const auto& req = ex->request();
    auto in = NewMessage(route.method->input_type());
    if (auto e = FromJson(req.body, in.get()); !e.empty()) {
      Error(*res, {grpc::StatusCode::INVALID_ARGUMENT, e}, request_id);
      return false;
    }
    auto call = std::make_unique<PendingCall>(this);
    call->request = in->SerializeAsString();
    call->credentials = CredentialsOf(req, false);
    call->adm.request_id = request_id;
    call->exchange = ex;
    call->route = &route;
    call->head = *res;
    int64_t retry_after = 0;
    const auto cached =
        gate.AdmitCached(route, call->credentials, &call->request, &call->adm, &retry_after);
    if (cached) {
      Admitted(std::move(call), *cached, retry_after);
      return true;
    }
    server->RunBlocking([this, raw = call.release()] {
      std::unique_ptr<PendingCall> c(raw);
      log::ScopedRequestId scope(c->adm.request_id);
      int64_t retry = 0;
      grpc::Status s;
      try {
        s = gate.Admit(*c->route, c->credentials, &c->request, &c->adm, &retry);
      } catch (const std::exception& e) {
        spdlog::error("HTTP {}: {}", c->route->http_path, e.what());
        s = grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
      }
      Admitted(std::move(c), s, retry);
    });
    return true;
  }

  // Starts an admitted call upstream, or answers the refusal.
  void Admitted(std::unique_ptr<PendingCall> call, const grpc::Status& s, int64_t retry_after) {
    if (!s.ok()) {
      http::Response res = std::move(call->head);
      res.SetHeader("x-labelloop-refused-by", "gateway");
      Error(res, s, call->adm.request_id, retry_after);
      call->exchange->Respond(std::move(res));
      return;
    }
    const Route& route = *call->route;
    gate.PrepareContext(&call->ctx, route, call->adm, std::chrono::system_clock::time_point::max());
    {
      std::lock_guard lock(inflight_mu);
      ++inflight;
    }
    call->reader = route.backend->stub->PrepareUnaryCall(&call->ctx, route.policy.method,
                                                         ToBuffer(call->request), cq);
    call->reader->StartCall();
    auto* raw = call.release();
    raw->reader->Finish(&raw->answer, &raw->status, AsTag(raw));
  }

  // On the completion-queue thread: work that may wait on the database goes to a worker.
  void OnAnswer(std::unique_ptr<PendingCall> call, bool ok) {
    if (ok && call->status.ok() && gate.AfterResponseMayBlock(*call->route, call->adm)) {
      server->RunBlocking(
          [this, raw = call.release()] { FinishUnary(std::unique_ptr<PendingCall>(raw), true); });
      return;
    }
    FinishUnary(std::move(call), ok);
  }

  // On the completion-queue thread (or a worker): the backend answered (or failed).
  void FinishUnary(std::unique_ptr<PendingCall> call, bool ok) {
    const auto& req_id = call->adm.request_id;
    log::ScopedRequestId scope(req_id);
    http::Response res = std::move(call->head);
    try {
      grpc::Status s =
          ok ? call->status : grpc::Status(grpc::StatusCode::INTERNAL, "call did not complete");
      std::string answer;
      if (s.ok()) {
        answer = ToString(call->answer);
        s = gate.AfterResponse(*call->route, call->adm, &answer);
      } else {
        s = gate.MapBackendStatus(*call->route->backend, s);
      }
      if (s.ok()) {
        auto out = NewMessage(call->route->method->output_type());
        out->ParseFromString(answer);
        res.SetContent(ToJson(*out), "application/json");
      } else {
        Error(res, s, req_id);
      }
    } catch (const std::exception& e) {
      spdlog::error("HTTP {}: {}", call->route->http_path, e.what());
      res.headers.clear();
      res.SetHeader("x-request-id", req_id);
      Error(res, {grpc::StatusCode::INTERNAL, "internal error"}, req_id);
    }
    call->exchange->Respond(std::move(res));
    call.reset();
    std::lock_guard lock(inflight_mu);
    if (--inflight == 0) inflight_cv.notify_all();
  }

  // --- streamed requests (on a worker thread, blocking) ------------------------------

  // The whole body, up to 64 MiB; false (and an answer sent) when it cannot be read.
  static bool ReadWholeBody(http::Stream& st, std::string* body) {
    bool too_large = false;
    const bool ok = st.ReadBody([&](const char* data, size_t len) {
      body->append(data, len);
      too_large = body->size() > (64u << 20);
      return !too_large;
    });
    if (!ok || too_large) {
      http::Response res;
      res.status = 413;
      if (!too_large) res.status = 400;
      st.Answer(res);
      return false;
    }
    return true;
  }

  void HandleStreamed(http::Stream& st) {
    const auto& req = st.request();
    if (req.path == "/healthz") {
      http::Response res;
      const bool ok = healthy();
      res.status = ok ? 200 : 503;
      res.SetContent(ok ? "SERVING\n" : "NOT_SERVING\n", "text/plain");
      return st.Answer(res);
    }
    if (req.path == "/v1/info") {
      http::Response res;
      Cors(req, res);
      v1::ServiceInfo info;
      fill_info(&info);
      res.SetContent(ToJson(info), "application/json");
      return st.Answer(res);
    }
    std::string service, method;
    SplitApiPath(req.path, &service, &method);
    const std::string request_id = RequestId(req);
    log::ScopedRequestId scope(request_id);
    http::Response res = Head(req, request_id);
    try {
      const Route* route = service == "GatewayService" ? nullptr : gate.FindHttp(req.path);
      const bool client_stream = route != nullptr && route->client_streaming;
      std::string body;
      if (!client_stream && !ReadWholeBody(st, &body)) return;
      if (service == "GatewayService") {
        if (method == "WatchProject") return WatchSse(st, res, body, request_id);
        if (req.method != "POST") {
          Error(res, {grpc::StatusCode::INVALID_ARGUMENT, "use POST"}, request_id);
          return st.Answer(res);
        }
        SelfUnary(req, res, method, body, request_id);
        return st.Answer(res);
      }
      if (route == nullptr) {  // not reached: classified as buffered
        Error(res, {grpc::StatusCode::NOT_FOUND, "no such method"}, request_id);
        return st.Answer(res);
      }
      if (route->server_streaming) return ServerStream(st, res, *route, body, request_id);
      return ClientStream(st, res, *route, request_id);
    } catch (const std::exception& e) {
      spdlog::error("HTTP {}: {}", req.path, e.what());
      res = Head(req, request_id);
      Error(res, {grpc::StatusCode::INTERNAL, "internal error"}, request_id);
      st.Answer(res);
    }
  }

  // GatewayService over HTTP: the gateway's own gRPC port does the work.
  void SelfUnary(const http::Request& req, http::Response& res, const std::string& method,
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
    res.SetContent(ToJson(*out), "application/json");
  }

  void WatchSse(http::Stream& st, http::Response& res, const std::string& body,
                const std::string& request_id) {
    const auto& req = st.request();
    v1::WatchProjectRequest w;
    if (req.method == "GET") {
      if (req.HasParam("project_id")) w.set_project_id(std::atoll(req.Param("project_id").c_str()));
      for (size_t i = 0; i < req.ParamCount("types"); ++i) w.add_types(req.Param("types", i));
    } else if (auto e = FromJson(body, &w); !e.empty()) {
      Error(res, {grpc::StatusCode::INVALID_ARGUMENT, e}, request_id);
      return st.Answer(res);
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
      return st.Answer(res);
    }
    std::set<std::string> types(w.types().begin(), w.types().end());
    auto watcher = hub.Watch(w.project_id(), types);
    res.SetHeader("Cache-Control", "no-cache");
    res.content_type = "text/event-stream";
    bool open =
        st.StartChunked(res) &&
        st.WriteChunk(": watching project " + std::to_string(watcher->project_id()) + "\n\n");
    while (open) {
      ProjectEventData ev;
      const auto next = watcher->Wait(std::chrono::seconds(15), &ev);
      if (next == EventHub::Watcher::Next::kClosed) {
        st.EndChunked();
        break;
      }
      open = next == EventHub::Watcher::Next::kTimeout
                 ? st.WriteChunk(": ping\n\n")
                 : st.WriteChunk("event: " + ev.type + "\ndata: " + ev.json + "\n\n");
    }
    hub.Unwatch(watcher);
  }

  // Server stream → Server-Sent Events (`data: <message JSON>` each, then `event: end` or
  // `event: error`), or with ?raw=1 and a `bytes data` field in the answers, the bytes.
  void ServerStream(http::Stream& st, http::Response& res, const Route& route,
                    const std::string& body, const std::string& request_id) {
    const auto& req = st.request();
    auto in = NewMessage(route.method->input_type());
    std::string parse_error;
    if (req.method == "GET") {
      // Query parameters as the fields of the request (integers and strings).
      QueryToMessage(req, in.get());
    } else {
      parse_error = FromJson(body, in.get());
    }
    if (!parse_error.empty()) {
      Error(res, {grpc::StatusCode::INVALID_ARGUMENT, parse_error}, request_id);
      return st.Answer(res);
    }
    std::string bytes = in->SerializeAsString();
    Admission adm;
    adm.request_id = request_id;
    int64_t retry_after = 0;
    auto s = gate.Admit(route, CredentialsOf(req, true), &bytes, &adm, &retry_after);
    if (!s.ok()) {
      res.SetHeader("x-labelloop-refused-by", "gateway");
      Error(res, s, request_id, retry_after);
      return st.Answer(res);
    }
    const auto* data_field = route.method->output_type()->FindFieldByName("data");
    const bool raw = req.Param("raw") == "1" && data_field != nullptr &&
                     data_field->type() == pb::FieldDescriptor::TYPE_BYTES;
    grpc::ClientContext ctx;
    gate.PrepareContext(&ctx, route, adm, std::chrono::system_clock::time_point::max());
    auto stream = OpenStream(route.backend->channel.get(), route.policy.method, &ctx);
    grpc::ByteBuffer first = ToBuffer(bytes);
    stream->WriteLast(first, grpc::WriteOptions());
    if (raw) {
      res.content_type = "application/octet-stream";
    } else {
      res.SetHeader("Cache-Control", "no-cache");
      res.content_type = "text/event-stream";
    }
    bool open = st.StartChunked(res);
    grpc::ByteBuffer buf;
    while (open && stream->Read(&buf)) {
      auto msg = NewMessage(route.method->output_type());
      msg->ParseFromString(ToString(buf));
      if (raw) {
        open = st.WriteChunk(msg->GetReflection()->GetString(*msg, data_field));
      } else {
        open = st.WriteChunk("data: " + ToJson(*msg) + "\n\n");
      }
    }
    if (!open) {
      ctx.TryCancel();
      stream->Finish();
      return;
    }
    s = gate.MapBackendStatus(*route.backend, stream->Finish());
    if (raw && !s.ok()) {
      return;  // a raw download that failed half-way must not look complete: no final chunk
    }
    if (!raw) {
      const int code = static_cast<int>(s.error_code());
      st.WriteChunk(s.ok()
                        ? std::string("event: end\ndata: {\"code\":\"OK\"}\n\n")
                        : "event: error\ndata: " + ErrorJson(code, s.error_message(), "") + "\n\n");
    }
    st.EndChunked();
  }

  static void QueryToMessage(const http::Request& req, pb::Message* m) {
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
  void ClientStream(http::Stream& st, http::Response& res, const Route& route,
                    const std::string& request_id) {
    const auto& req = st.request();
    const auto* type = route.method->input_type();
    const bool ndjson = req.Header("content-type").find("ndjson") != std::string::npos;
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
      return st.Answer(res);
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
      if (!st.ReadBody([&](const char* data, size_t len) {
            pending.append(data, len);
            flush_lines(false);
            return !broken;
          })) {
        broken = true;
      }
      if (!broken) flush_lines(true);
    } else {
      auto first = NewMessage(type);
      std::string first_json = req.Header("x-labelloop-first-message");
      if (first_json.empty()) first_json = req.Param("first");
      if (auto e = FromJson(first_json, first.get()); !e.empty()) {
        Error(res, {grpc::StatusCode::INVALID_ARGUMENT, "x-labelloop-first-message: " + e},
              request_id);
        return st.Answer(res);
      }
      broken = !send(first->SerializeAsString());
      auto send_chunk = [&](std::string chunk) {
        auto msg = NewMessage(type);
        msg->GetReflection()->SetString(msg.get(), bytes_field, std::move(chunk));
        if (!send(msg->SerializeAsString())) broken = true;
      };
      if (!broken) {
        if (!st.ReadBody([&](const char* data, size_t len) {
              pending.append(data, len);
              while (!broken && pending.size() >= options.upload_message_bytes) {
                send_chunk(pending.substr(0, options.upload_message_bytes));
                pending.erase(0, options.upload_message_bytes);
              }
              return !broken;
            })) {
          broken = true;
          if (status.ok()) status = grpc::Status(grpc::StatusCode::CANCELLED, "upload broken off");
        }
        if (!broken && !pending.empty()) send_chunk(std::move(pending));
      }
    }
    if (!admitted) {
      if (status.ok()) status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no messages");
      Error(res, status, request_id, retry_after);
      return st.Answer(res);
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
      return st.Answer(res);
    }
    auto out = NewMessage(route.method->output_type());
    out->ParseFromString(ToString(resp));
    res.SetContent(ToJson(*out), "application/json");
    st.Answer(res);
  }
};

void PendingCall::Complete(bool ok) { impl->OnAnswer(std::unique_ptr<PendingCall>(this), ok); }

HttpApi::HttpApi(HttpOptions options, Gate& gate, EventHub& hub, std::function<int()> grpc_port,
                 std::string grpc_host, std::function<bool()> healthy,
                 std::function<void(v1::ServiceInfo*)> fill_info)
    : impl_(std::make_unique<Impl>(std::move(options), gate, hub, std::move(grpc_port),
                                   std::move(grpc_host), std::move(healthy),
                                   std::move(fill_info))) {}

HttpApi::~HttpApi() { Stop(); }

bool HttpApi::Listen() {
  auto* impl = impl_.get();
  http::ServerOptions so;
  so.host = impl->options.host;
  so.port = impl->options.port;
  so.io_threads = std::max(1, impl->options.io_threads);
  so.workers = std::max(4, impl->options.threads);
  so.stall_timeout_seconds = impl->options.stall_timeout_seconds;
  http::Handlers handlers;
  handlers.classify = [impl](const http::Request& req) { return impl->Classify(req); };
  handlers.buffered = [impl](std::shared_ptr<http::Exchange> ex) { impl->HandleBuffered(ex); };
  handlers.streamed = [impl](http::Stream& st) { impl->HandleStreamed(st); };
  impl->server = std::make_unique<http::Server>(so, std::move(handlers));
  if (!impl->server->Listen()) return false;
  port_ = impl->server->port();
  return true;
}

void HttpApi::Serve(grpc::CompletionQueue* cq) {
  auto* impl = impl_.get();
  if (impl->server == nullptr || impl->cq != nullptr) return;
  impl->cq = cq;
  impl->server->Run();
}

void HttpApi::Stop() {
  auto* impl = impl_.get();
  if (impl->server == nullptr) return;
  impl->server->Stop();
  {
    // Calls in flight end by their deadline at the latest.
    std::unique_lock lock(impl->inflight_mu);
    impl->inflight_cv.wait(lock, [impl] { return impl->inflight == 0; });
  }
  impl->server.reset();
}

}  // namespace labelloop::gateway
