// labelloop-labeling: The labeling service: projects, datasets, items, leases and labels.
#include "common/bootstrap/runtime.hpp"
#include "services/labeling/service.hpp"

namespace labelloop::labeling {
std::vector<migrate::Migration> Migrations();
}

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime({.service = "labeling",
                              .binary = "labelloop-labeling",
                              .description = "The labeling service: projects, datasets, items, leases and labels.",
                              .grpc_port = 50052,
                              .metrics_port = 9092,
                              .migrations = labeling::Migrations()});
  if (auto code = runtime.Init(argc, argv)) return *code;
  labeling::LabelingServiceImpl service(runtime);
  return runtime.Serve({&service});
}
