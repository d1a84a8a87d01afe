// labelloop-healthcheck: asks a gRPC server for its health (the standard
// grpc.health.v1 protocol). Exit 0 when SERVING, 1 otherwise. Used by the scripts,
// container HEALTHCHECKs and tests.
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1:50051";
  std::string service;
  int timeout_ms = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--addr" || a == "--service" || a == "--timeout-ms") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--addr") addr = v;
      if (a == "--service") service = v;
      if (a == "--timeout-ms") timeout_ms = std::stoi(v);
    } else {
      std::cout << "usage: labelloop-healthcheck [--addr host:port] [--service name] "
                   "[--timeout-ms N]\n";
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  if (!st.ok()) {
    std::cerr << addr << ": " << st.error_message() << "\n";
    return 1;
  }
  bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::cout << addr << ": " << (serving ? "SERVING" : "NOT_SERVING") << "\n";
  return serving ? 0 : 1;
}
