#include <httplib.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "common/metrics/metrics.hpp"

namespace labelloop::metrics {

struct HttpExporter::Impl {
  httplib::Server server;
  std::thread thread;
};

HttpExporter::HttpExporter(Registry& registry, std::string host, int port)
    : impl_(std::make_unique<Impl>()), host_(std::move(host)), port_(port) {
  impl_->server.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

HttpExporter::~HttpExporter() { Stop(); }

bool HttpExporter::Start() {
  if (port_ == 0) {
    port_ = impl_->server.bind_to_any_port(host_);
    if (port_ < 0) return false;
  } else if (!impl_->server.bind_to_port(host_, port_)) {
    return false;
  }
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  return true;
}

void HttpExporter::Stop() {
  if (impl_ && impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

}  // namespace labelloop::metrics
