// labelloop-dl-manager: builds downloadable archives of a project's results.
#include <spdlog/spdlog.h>

#include "common/bootstrap/runtime.hpp"
#include "common/redis/redis.hpp"
#include "services/dl_manager/service.hpp"

namespace labelloop::dl_manager {
std::vector<migrate::Migration> Migrations();
inline constexpr const char* kRequestedChannel = "labelloop.downloads.requested";
}  // namespace labelloop::dl_manager

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime(
      {.service = "dl_manager",
       .binary = "labelloop-dl-manager",
       .description =
           "The download manager: builds archives of labels, predictions and the classifier.",
       .grpc_port = 50055,
       .metrics_port = 9095,
       .migrations = dl_manager::Migrations()});
  if (auto code = runtime.Init(argc, argv)) return *code;
  auto& received = runtime.metrics().GetCounter("labelloop_bus_messages_received_total",
                                                "bus messages received",
                                                {{"channel", dl_manager::kRequestedChannel}});
  redis::Subscriber subscriber(runtime.redis_endpoint(), {dl_manager::kRequestedChannel},
                               [&](const std::string& channel, const std::string& payload) {
                                 received.Increment();
                                 spdlog::info("received on {}: {}", channel, payload);
                               });
  runtime.metrics().AddCallbackGauge("labelloop_bus_subscriber_connected",
                                     "1 while the Redis subscriber is connected",
                                     [&] { return subscriber.connected() ? 1.0 : 0.0; });
  subscriber.Start();
  dl_manager::DlManagerServiceImpl service(runtime);
  return runtime.Serve({&service}, [&] { subscriber.Stop(); });
}
