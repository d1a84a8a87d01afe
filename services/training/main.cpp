// labelloop-training: The training service: durable training jobs, models, metrics and predictions.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <random>

#include "common/bootstrap/runtime.hpp"
#include "common/bus/channels.hpp"
#include "services/training/retrain.hpp"
#include "services/training/service.hpp"
#include "services/training/worker.hpp"

namespace labelloop::training {
std::vector<migrate::Migration> Migrations();
}

int main(int argc, char** argv) {
  using namespace labelloop;
  bootstrap::Runtime runtime({.service = "training",
                              .binary = "labelloop-training",
                              .description = "The training service: durable training jobs, "
                                             "models, metrics and predictions.",
                              .grpc_port = 50054,
                              .metrics_port = 9094,
                              .migrations = training::Migrations()});
  auto& s = runtime.settings();
  s.AddInt("job-lease-seconds", 30,
           "a running job's lease; another replica takes the job over when it expires", 1, 86400);
  s.AddInt("job-heartbeat-ms", 1000,
           "how often the lease is renewed and a cancel looked for (at most a third of the lease)",
           20, 600000);
  s.AddInt("job-poll-ms", 2000, "how often the worker looks for jobs without a wake-up", 50,
           600000);
  s.AddInt("job-max-attempts", 3, "attempts before a job is FAILED", 1, 100);
  s.AddInt("min-labels-per-class", 3,
           "labeled items a class needs to count; at least two classes must have them", 1, 100000);
  s.AddInt("retrain-reconcile-ms", 5000, "how often auto-retraining policies are checked", 100,
           3600000);
  s.AddInt("predict-batch", 4096, "unlabeled items read and predicted per batch", 1, 1000000);
  s.AddInt("watch-poll-ms", 200, "how often WatchTraining streams look for progress", 10, 60000);
  s.AddString("worker-id", "",
              "name of this worker in training.jobs.claimed_by (default: host-pid)");
  s.AddBool("worker-enabled", true, "take training jobs (false: serve the API only)");
  if (auto code = runtime.Init(argc, argv)) return *code;

  std::string worker_id = s.GetString("worker-id");
  if (worker_id.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    std::random_device rd;
    worker_id =
        std::string(host) + "-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 100000);
  }
  const int lease = static_cast<int>(s.GetInt("job-lease-seconds"));
  training::WorkerOptions wo{
      .worker_id = worker_id,
      .lease_seconds = lease,
      .heartbeat_ms = std::min(static_cast<int>(s.GetInt("job-heartbeat-ms")), lease * 1000 / 3),
      .poll_ms = static_cast<int>(s.GetInt("job-poll-ms")),
      .min_labels_per_class = static_cast<int>(s.GetInt("min-labels-per-class")),
      .predict_batch = static_cast<int>(s.GetInt("predict-batch")),
      .registry = &runtime.metrics()};
  const training::JobRules rules{.min_labels_per_class = wo.min_labels_per_class,
                                 .max_attempts = static_cast<int>(s.GetInt("job-max-attempts"))};

  training::storage::Store store(runtime.pool());
  // Publishing and the service's calls share one connection; the worker gets its own so a
  // slow publish never holds up a handler.
  redis::Client worker_redis(runtime.redis_endpoint());
  training::Worker worker(store, worker_redis, wo);
  training::Retrainer retrainer(store, runtime.redis(), rules,
                                static_cast<int>(s.GetInt("retrain-reconcile-ms")));
  training::TrainingServiceImpl service(runtime, store, runtime.redis(), rules,
                                        static_cast<int>(s.GetInt("watch-poll-ms")));
  const bool worker_enabled = s.GetBool("worker-enabled");

  redis::Subscriber subscriber(
      runtime.redis_endpoint(), {bus::kTrainingJobs, bus::kLabelsSubmitted},
      [&](const std::string& channel, const std::string& payload) {
        if (channel == bus::kLabelsSubmitted) {
          retrainer.OnLabelsSubmitted(payload);
          return;
        }
        auto j = nlohmann::json::parse(payload, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.value("type", "") == "training.cancel" &&
            j.contains("job_id") && j["job_id"].is_number_integer()) {
          worker.CancelIfRunning(j["job_id"].get<int64_t>());
          return;
        }
        worker.Wake();
      },
      [&] {
        // After every (re)subscription: whatever was published meanwhile is in PostgreSQL.
        worker.Wake();
      });
  subscriber.Start();
  retrainer.Start();
  if (worker_enabled) worker.Start();
  spdlog::info("training worker id {}", worker_id);

  return runtime.Serve({&service}, [&] {
    spdlog::info("draining: no new jobs; the running one is handed back");
    service.Drain();
    retrainer.Stop();
    worker.Drain();
    subscriber.Stop();
  });
}
