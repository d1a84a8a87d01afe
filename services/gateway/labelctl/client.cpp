#include "services/gateway/labelctl/client.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace labelloop::labelctl {

std::string DefaultTokenPath() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x != nullptr && *x != '\0') {
    return std::string(x) + "/labelloop/token";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.config/labelloop/token";
}

bool LoadLogin(const std::string& path, Login* login) {
  std::ifstream f(path);
  if (!f) return false;
  try {
    auto j = nlohmann::json::parse(f);
    login->gateway = j.value("gateway", "");
    login->username = j.value("username", "");
    login->access_token = j.value("access_token", "");
    login->refresh_token = j.value("refresh_token", "");
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool SaveLogin(const std::string& path, const Login& login, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  nlohmann::json j = {{"gateway", login.gateway},
                      {"username", login.username},
                      {"access_token", login.access_token},
                      {"refresh_token", login.refresh_token}};
  const std::string tmp = path + ".tmp";
  {
    const mode_t old = umask(077);
    std::ofstream f(tmp, std::ios::trunc);
    umask(old);
    if (!f) {
      *error = "cannot write " + tmp;
      return false;
    }
    f << j.dump(2) << "\n";
  }
  chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    *error = "cannot write " + path + ": " + ec.message();
    return false;
  }
  return true;
}

Client::Client(std::string gateway, std::string token_path, std::string api_key)
    : gateway_(std::move(gateway)),
      token_path_(std::move(token_path)),
      api_key_(std::move(api_key)) {
  LoadLogin(token_path_, &login_);
  if (gateway_.empty()) gateway_ = login_.gateway;
  if (gateway_.empty()) gateway_ = "127.0.0.1:50051";
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  channel_ = grpc::CreateCustomChannel(gateway_, grpc::InsecureChannelCredentials(), args);
}

void Client::Prepare(grpc::ClientContext* ctx, int timeout_seconds) const {
  if (!api_key_.empty()) {
    ctx->AddMetadata("x-api-key", api_key_);
  } else if (!login_.access_token.empty()) {
    ctx->AddMetadata("authorization", "Bearer " + login_.access_token);
  }
  if (timeout_seconds > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_seconds));
  }
}

grpc::Status Client::Call(const std::function<grpc::Status(grpc::ClientContext*)>& call,
                          int timeout_seconds) {
  grpc::Status s;
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, timeout_seconds);
    s = call(&ctx);
  }
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED && api_key_.empty() &&
      s.error_message().find("expired") != std::string::npos && TryRefresh()) {
    grpc::ClientContext ctx;
    Prepare(&ctx, timeout_seconds);
    s = call(&ctx);
  }
  return s;
}

bool Client::TryRefresh() {
  if (login_.refresh_token.empty()) return false;
  auto stub = v1::GatewayService::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::RefreshRequest req;
  req.set_refresh_token(login_.refresh_token);
  v1::LoginResponse resp;
  if (!stub->Refresh(&ctx, req, &resp).ok()) return false;
  login_.access_token = resp.access_token();
  login_.refresh_token = resp.refresh_token();
  std::string error;
  return SaveLogin(token_path_, login_, &error);
}

}  // namespace labelloop::labelctl
