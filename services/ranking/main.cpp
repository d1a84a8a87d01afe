// labelloop-ranking: The uncertainty-ranking service: scores and the order items are labeled in.
#include "common/bootstrap/runtime.hpp"
#include "services/ranking/service.hpp"

namespace labelloop::ranking {
std::vector<migrate::Migration> Migrations();
}

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime({.service = "ranking",
                              .binary = "labelloop-ranking",
                              .description = "The uncertainty-ranking service: scores and the order items are labeled in.",
                              .grpc_port = 50053,
                              .metrics_port = 9093,
                              .migrations = ranking::Migrations()});
  if (auto code = runtime.Init(argc, argv)) return *code;
  ranking::RankingServiceImpl service(runtime);
  return runtime.Serve({&service});
}
