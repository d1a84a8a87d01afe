// models.ready -> live order for a large project, the restart rebuild, and NextCandidates
// latency under 64 concurrent callers, against the real labelloop-ranking binary.
//
//   LABELLOOP_TEST_PG_URL=... LABELLOOP_TEST_REDIS_HOST=... LABELLOOP_TEST_REDIS_PORT=...
//   LABELLOOP_BIN_DIR=build/bin ranking_live_bench [items] [runs] [callers] [seconds]
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "common/migrate/migrate.hpp"
#include "common/redis/redis.hpp"
#include "common/testing/testing.hpp"
#include "labelloop/v1/ranking.grpc.pb.h"
#include "services/ranking/storage/pg_copy.hpp"
#include "services/training/storage/store.hpp"

namespace labelloop {
namespace bench_labeling {
std::vector<migrate::Migration> Migrations();
}
namespace bench_training {
std::vector<migrate::Migration> Migrations();
}
}  // namespace labelloop

using namespace labelloop;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

int64_t Scalar(pg::Pool& pool, const std::string& sql) {
  return pool.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto r = tx.exec(sql);
    tx.commit();
    return r[0][0].is_null() ? int64_t{0} : r[0][0].as<int64_t>();
  });
}

v1::RankInfoResponse Info(v1::RankingService::Stub& stub, int64_t project) {
  grpc::ClientContext ctx;
  v1::RankInfoRequest req;
  req.set_project_id(project);
  v1::RankInfoResponse resp;
  stub.RankInfo(&ctx, req, &resp);
  return resp;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t items = argc > 1 ? std::stoul(argv[1]) : 1000000;
  const int runs = argc > 2 ? std::stoi(argv[2]) : 3;
  const int callers = argc > 3 ? std::stoi(argv[3]) : 64;
  const int seconds = argc > 4 ? std::stoi(argv[4]) : 10;
  auto admin = testing::AdminPgUrl();
  auto redis = testing::TestRedis();
  if (!admin || !redis) {
    std::fprintf(stderr, "set LABELLOOP_TEST_PG_URL and LABELLOOP_TEST_REDIS_HOST/PORT\n");
    return 2;
  }
  constexpr int kClasses = 10;
  std::printf(
      "workload: project of %zu items x %d classes; %d models.ready runs; "
      "NextCandidates from %d concurrent callers for %d s; %u hardware threads\n",
      items, kClasses, runs, callers, seconds, std::thread::hardware_concurrency());
  testing::TempDatabase db(*admin);
  pg::Pool pool({.url = db.url(), .size = 2, .statement_timeout_ms = 600000});
  migrate::Apply(pool, "labeling", bench_labeling::Migrations());
  migrate::Apply(pool, "training", bench_training::Migrations());
  const int64_t project = Scalar(
      pool,
      "INSERT INTO labeling.projects (name, data_kind, label_kind, classes) VALUES ('bench', "
      "'tabular', 'single', '{c0,c1,c2,c3,c4,c5,c6,c7,c8,c9}') RETURNING id");
  std::mt19937 gen(1);
  std::normal_distribution<float> z(0.0f, 1.0f);
  {
    const auto t0 = Clock::now();
    ranking::storage::Connection conn(db.url());
    size_t i = 0;
    conn.CopyIn(
        "COPY labeling.items (project_id, external_id, features) FROM STDIN (FORMAT binary)",
        [&](pg::binary::CopyEncoder& w) {
          float f[8];
          for (size_t end = std::min(items, i + 10000); i < end; ++i) {
            for (auto& x : f) x = z(gen);
            w.BeginTuple(3);
            w.Int64(project);
            w.Text("e" + std::to_string(i));
            w.FloatArray(f);
          }
          return i < items;
        });
    std::printf("setup: %zu items inserted in %.1f s\n", items, Ms(Clock::now() - t0) / 1000);
  }
  const int64_t first_item = Scalar(
      pool, "SELECT min(id) FROM labeling.items WHERE project_id = " + std::to_string(project));

  testing::ServiceUnderTest ranking("labelloop-ranking", db.url(), *redis,
                                    {"--reconcile-interval-ms", "600000", "--score-threads", "2"});
  if (!ranking.WaitServing(std::chrono::seconds(60))) {
    std::fprintf(stderr, "ranking did not start:\n%s\n", ranking.Log().c_str());
    return 1;
  }
  auto stub = v1::RankingService::NewStub(ranking.Channel());
  redis::Client publisher({.host = redis->first, .port = redis->second});

  std::vector<double> ready_ms, build_s, write_ms;
  int64_t model = 0;
  for (int run = 1; run <= runs; ++run) {
    // Predictions written by training's own code (packed chunks, then predictions_ready
    // with the job's SUCCEEDED in the same transaction), timed apart from generating them.
    const int64_t job = Scalar(pool,
                               "INSERT INTO training.jobs (project_id, spec, state, claimed_by, "
                               "lease_until) VALUES (" +
                                   std::to_string(project) +
                                   ", '{}', 'RUNNING', 'bench', now() + interval '1 hour') "
                                   "RETURNING id");
    model = Scalar(pool,
                   "INSERT INTO training.models (project_id, version, job_id, model_type, "
                   "multi_label, classes, model_json) VALUES (" +
                       std::to_string(project) + ", " + std::to_string(run) + ", " +
                       std::to_string(job) +
                       ", 'bench', false, '{c0,c1,c2,c3,c4,c5,c6,c7,c8,c9}', '{}') RETURNING id");
    {
      std::vector<float> probs(items * kClasses);
      std::uniform_real_distribution<float> temp(0.2f, 3.0f);
      for (size_t i = 0; i < items; ++i) {
        float* p = probs.data() + i * kClasses;
        const float t = temp(gen);
        float sum = 0;
        for (int k = 0; k < kClasses; ++k) sum += (p[k] = std::exp(z(gen) * t));
        for (int k = 0; k < kClasses; ++k) p[k] /= sum;
      }
      const auto w0 = Clock::now();
      training::storage::PredictionSink sink(pool, model, kClasses);
      for (size_t i = 0; i < items; ++i) {
        sink.Add(first_item + static_cast<int64_t>(i), probs.data() + i * kClasses, kClasses);
      }
      if (!sink.Complete(job, "bench")) {
        std::fprintf(stderr, "the bench lost its own job\n");
        return 1;
      }
      write_ms.push_back(Ms(Clock::now() - w0));
      std::printf("run %d: training wrote %zu predictions (%lld chunks) in %.0f ms\n", run, items,
                  static_cast<long long>(sink.chunks()), write_ms.back());
    }
    const auto t0 = Clock::now();
    publisher.Publish("labelloop.models.ready",
                      "{\"type\":\"models.ready\",\"version\":1,\"project_id\":" +
                          std::to_string(project) + ",\"model_id\":" + std::to_string(model) +
                          ",\"model_version\":" + std::to_string(run) + "}");
    v1::RankInfoResponse info;
    for (;;) {
      info = Info(*stub, project);
      if (info.model_id() == model) break;
      if (Clock::now() - t0 > std::chrono::seconds(120)) {
        std::fprintf(stderr, "order never went live:\n%s\n", ranking.Log().c_str());
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ready_ms.push_back(Ms(Clock::now() - t0));
    build_s.push_back(info.build_seconds());
    std::printf(
        "run %d: models.ready -> live %.0f ms (server load+score+sort %.0f ms, %lld items)\n", run,
        ready_ms.back(), info.build_seconds() * 1000, static_cast<long long>(info.items()));
    // Let the scores be persisted before the next model, so runs do not overlap.
    while (Scalar(pool, "SELECT model_id FROM ranking.orders WHERE project_id = " +
                            std::to_string(project)) != model) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  std::printf("models.ready -> live: median %.0f ms over %d runs (goal < 2000 ms)\n",
              Percentile(ready_ms, 0.5), runs);
  std::printf("training writes %zu predictions: median %.0f ms over %d runs\n", items,
              Percentile(write_ms, 0.5), runs);

  // The floor PostgreSQL itself sets: the same COPY of the chunks with every row discarded.
  {
    std::vector<double> copy_ms;
    for (int r = 0; r < 3; ++r) {
      ranking::storage::Connection conn(db.url());
      size_t rows = 0;
      const auto t0 = Clock::now();
      conn.CopyOut(
          "COPY (SELECT chunk, row_count, item_ids, probabilities FROM "
          "training.v_prediction_chunks WHERE model_id = " +
              std::to_string(model) + " ORDER BY chunk) TO STDOUT (FORMAT binary)",
          [&](std::span<const ranking::storage::Field>) { ++rows; });
      copy_ms.push_back(Ms(Clock::now() - t0));
    }
    std::printf(
        "raw binary COPY of the %zu predictions' chunks, one connection, discarded: "
        "median %.0f ms\n",
        items, Percentile(copy_ms, 0.5));
  }

  // Restart: the order comes back from the persisted scores.
  {
    ranking.process().Signal(SIGKILL);
    ranking.process().Wait(std::chrono::seconds(10));
    const auto t0 = Clock::now();
    ranking.Restart();
    ranking.WaitServing(std::chrono::seconds(60));
    auto s2 = v1::RankingService::NewStub(ranking.Channel());
    while (Info(*s2, project).model_id() != model) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::printf("restart (SIGKILL, start, order live from persisted scores): %.0f ms\n",
                Ms(Clock::now() - t0));
  }

  // NextCandidates under load: `callers` threads, each n = 10 excluding 10 random items
  // of the head (as labeling does with items leased to others).
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int c = 0; c < 8; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", c);  // distinct channels, not one shared subchannel
    channels.push_back(
        grpc::CreateCustomChannel(ranking.address(), grpc::InsecureChannelCredentials(), args));
  }
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(callers);
  std::atomic<long> errors{0};
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int t = 0; t < callers; ++t) {
    threads.emplace_back([&, t] {
      auto s = v1::RankingService::NewStub(channels[t % channels.size()]);
      std::mt19937 g(t);
      std::uniform_int_distribution<int64_t> pick(first_item, first_item + 5000);
      while (!stop) {
        v1::NextCandidatesRequest req;
        req.set_project_id(project);
        req.set_n(10);
        for (int e = 0; e < 10; ++e) req.add_exclude_item_ids(pick(g));
        v1::NextCandidatesResponse resp;
        grpc::ClientContext ctx;
        const auto a = Clock::now();
        auto st = s->NextCandidates(&ctx, req, &resp);
        const auto b = Clock::now();
        if (!st.ok() || resp.candidates_size() != 10) ++errors;
        lat[t].push_back(Ms(b - a));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double elapsed = Ms(Clock::now() - t0) / 1000;
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::printf(
      "NextCandidates, %d callers: %zu calls in %.1f s (%.0f/s), p50 %.2f ms, p90 %.2f "
      "ms, p99 %.2f ms, max %.2f ms, errors %ld\n",
      callers, all.size(), elapsed, static_cast<double>(all.size()) / elapsed, Percentile(all, 0.5),
      Percentile(all, 0.9), Percentile(all, 0.99), Percentile(all, 1.0), errors.load());
  ranking.Stop();
  std::istringstream log(ranking.Log());
  for (std::string line; std::getline(log, line);) {
    if (line.find("order live") != std::string::npos ||
        line.find("persisted in") != std::string::npos) {
      std::printf("server: %s\n", line.c_str());
    }
  }
  return 0;
}
