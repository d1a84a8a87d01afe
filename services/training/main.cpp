// labelloop-training: The training service: durable training jobs, models, metrics and predictions.
#include "common/bootstrap/runtime.hpp"
#include "services/training/service.hpp"

namespace labelloop::training {
std::vector<migrate::Migration> Migrations();
}

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime({.service = "training",
                              .binary = "labelloop-training",
                              .description = "The training service: durable training jobs, models, metrics and predictions.",
                              .grpc_port = 50054,
                              .metrics_port = 9094,
                              .migrations = training::Migrations()});
  if (auto code = runtime.Init(argc, argv)) return *code;
  training::TrainingServiceImpl service(runtime);
  return runtime.Serve({&service});
}
