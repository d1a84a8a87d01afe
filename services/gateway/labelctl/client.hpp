// labelctl's connection to the gateway: the channel, the stored login (access and
// refresh token in ~/.config/labelloop/token, mode 0600) and calls that refresh an
// expired access token once, transparently.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

#include "labelloop/v1/gateway.grpc.pb.h"

namespace labelloop::labelctl {

struct Login {
  std::string gateway;
  std::string username;
  std::string access_token;
  std::string refresh_token;
};

std::string DefaultTokenPath();
bool LoadLogin(const std::string& path, Login* login);
// Writes the file with mode 0600 (creating the folder); false with a message on failure.
bool SaveLogin(const std::string& path, const Login& login, std::string* error);

class Client {
 public:
  Client(std::string gateway, std::string token_path, std::string api_key);

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  const std::string& gateway() const { return gateway_; }
  const std::string& token_path() const { return token_path_; }
  Login& login() { return login_; }

  // Adds credentials and a deadline (0 = none) to a context.
  void Prepare(grpc::ClientContext* ctx, int timeout_seconds) const;

  // Runs call(ctx) with credentials; on an expired access token refreshes once and
  // runs it again with a fresh context.
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call,
                    int timeout_seconds = 60);

 private:
  bool TryRefresh();

  std::string gateway_;
  std::string token_path_;
  std::string api_key_;
  Login login_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace labelloop::labelctl
