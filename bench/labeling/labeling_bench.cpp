// Load generator for the labeling benchmark (bench/labeling/run.sh).
//
//   labeling_bench create-project ADDR              prints the new project's id
//   labeling_bench run ADDR PROJECT CLIENTS SECONDS [WARMUP_SECONDS]
//
// `run` starts CLIENTS threads, each with its own channel, each an annotator looping
// ClaimNext(n = 1) then SubmitLabel, and prints one line of JSON: cycles per second
// over the measured window and p50/p99 latency (ms) of each call.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "labelloop/v1/labeling.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using labelloop::v1::LabelingService;

std::unique_ptr<LabelingService::Stub> NewStub(const std::string& addr, int id) {
  grpc::ChannelArguments args;
  args.SetInt("labelloop.bench.channel", id);  // a connection of its own per annotator
  return LabelingService::NewStub(
      grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args));
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

int CreateProject(const std::string& addr) {
  auto stub = NewStub(addr, 0);
  labelloop::v1::CreateProjectRequest req;
  req.set_name("bench");
  req.set_data_kind("tabular");
  req.mutable_schema()->set_kind("single");
  req.mutable_schema()->add_classes("a");
  req.mutable_schema()->add_classes("b");
  labelloop::v1::Project p;
  grpc::ClientContext ctx;
  auto st = stub->CreateProject(&ctx, req, &p);
  if (!st.ok()) {
    std::cerr << "CreateProject: " << st.error_message() << "\n";
    return 1;
  }
  std::cout << p.id() << "\n";
  return 0;
}

int Run(const std::string& addr, int64_t project, int clients, double seconds, double warmup) {
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<long> errors{0};
  std::atomic<long> empty{0};
  std::vector<std::vector<double>> claim_ms(static_cast<size_t>(clients));
  std::vector<std::vector<double>> submit_ms(static_cast<size_t>(clients));
  std::vector<long> cycles(static_cast<size_t>(clients), 0);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto stub = NewStub(addr, c + 1);
      const std::string who = "bench-" + std::to_string(c);
      const auto i = static_cast<size_t>(c);
      while (!stop.load()) {
        labelloop::v1::ClaimNextRequest creq;
        creq.set_project_id(project);
        creq.set_annotator(who);
        creq.set_n(1);
        labelloop::v1::ClaimNextResponse cresp;
        grpc::ClientContext cctx;
        auto t0 = Clock::now();
        auto st = stub->ClaimNext(&cctx, creq, &cresp);
        auto t1 = Clock::now();
        if (!st.ok()) {
          if (++errors < 5) std::cerr << "claim: " << st.error_message() << "\n";
          continue;
        }
        if (cresp.items_size() == 0) {
          ++empty;
          continue;
        }
        labelloop::v1::SubmitLabelRequest sreq;
        sreq.set_item_id(cresp.items(0).lease().item_id());
        sreq.set_lease_token(cresp.items(0).lease().token());
        sreq.add_classes(sreq.item_id() % 2 == 0 ? "a" : "b");
        sreq.set_seconds_spent(3);
        labelloop::v1::SubmitLabelResponse sresp;
        grpc::ClientContext sctx;
        auto t2 = Clock::now();
        st = stub->SubmitLabel(&sctx, sreq, &sresp);
        auto t3 = Clock::now();
        if (!st.ok()) {
          if (++errors < 5) std::cerr << "submit: " << st.error_message() << "\n";
          continue;
        }
        if (measuring.load()) {
          claim_ms[i].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          submit_ms[i].push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
          ++cycles[i];
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  measuring = true;
  auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  measuring = false;
  auto elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& t : threads) t.join();
  std::vector<double> claims;
  std::vector<double> submits;
  long total = 0;
  for (int c = 0; c < clients; ++c) {
    const auto i = static_cast<size_t>(c);
    claims.insert(claims.end(), claim_ms[i].begin(), claim_ms[i].end());
    submits.insert(submits.end(), submit_ms[i].begin(), submit_ms[i].end());
    total += cycles[i];
  }
  std::printf(
      "{\"cycles\":%ld,\"seconds\":%.2f,\"cycles_per_s\":%.1f,\"claim_p50_ms\":%.2f,"
      "\"claim_p99_ms\":%.2f,\"submit_p50_ms\":%.2f,\"submit_p99_ms\":%.2f,\"errors\":%ld,"
      "\"empty_claims\":%ld}\n",
      total, elapsed, static_cast<double>(total) / elapsed, Percentile(claims, 0.50),
      Percentile(claims, 0.99), Percentile(submits, 0.50), Percentile(submits, 0.99), errors.load(),
      empty.load());
  return errors.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "create-project") return CreateProject(args[1]);
  if ((args.size() == 5 || args.size() == 6) && args[0] == "run") {
    return Run(args[1], std::stoll(args[2]), std::stoi(args[3]), std::stod(args[4]),
               args.size() == 6 ? std::stod(args[5]) : 3.0);
  }
  std::cerr << "usage: labeling_bench create-project ADDR\n"
               "       labeling_bench run ADDR PROJECT CLIENTS SECONDS [WARMUP_SECONDS]\n";
  return 2;
}
