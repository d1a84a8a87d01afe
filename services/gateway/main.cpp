// labelloop-gateway: the public door — gRPC and HTTP/JSON.
#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "common/bootstrap/runtime.hpp"
#include "services/gateway/service.hpp"

namespace labelloop::gateway {
std::vector<migrate::Migration> Migrations();
}

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime(
      {.service = "gateway",
       .binary = "labelloop-gateway",
       .description = "The gateway: the public gRPC and HTTP/JSON API, authentication and "
                      "authorization.",
       .grpc_port = 50051,
       .metrics_port = 9091,
       .migrations = gateway::Migrations()});
  runtime.settings().AddString("http-host", "0.0.0.0", "address the HTTP/JSON API binds");
  runtime.settings().AddInt("http-port", 8080, "HTTP/JSON API port", 0, 65535);
  if (auto code = runtime.Init(argc, argv)) return *code;

  httplib::Server http;
  http.Get("/v1/info", [&](const httplib::Request&, httplib::Response& res) {
    v1::ServiceInfo info;
    runtime.FillInfo(&info);
    std::string json;
    google::protobuf::util::JsonPrintOptions opts;
    opts.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(info, &json, opts);
    res.set_content(json, "application/json");
  });
  http.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    bool ok = runtime.pool().Ping() && runtime.redis().Ping();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "SERVING\n" : "NOT_SERVING\n", "text/plain");
  });
  const auto http_host = runtime.settings().GetString("http-host");
  const auto http_port = static_cast<int>(runtime.settings().GetInt("http-port"));
  if (!http.bind_to_port(http_host, http_port)) {
    spdlog::critical("cannot bind the HTTP port (setting 'http-port' = {})", http_port);
    return 1;
  }
  std::thread http_thread([&] { http.listen_after_bind(); });
  spdlog::info("HTTP/JSON on http://{}:{}", http_host, http_port);

  gateway::GatewayServiceImpl service(runtime);
  int code = runtime.Serve({&service}, [&] { http.stop(); });
  http.stop();
  http_thread.join();
  return code;
}
