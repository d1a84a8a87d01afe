// Requests/s and p50/p99 latency of a read RPC (GetProject) and of the claim+submit
// cycle (ClaimNext + SubmitLabel), with N concurrent clients over loopback: direct to
// labeling over gRPC, through the gateway over gRPC, and through the gateway over
// HTTP/JSON with keep-alive. Every configuration runs `runs` times, interleaved; the
// medians are printed. Started by bench/gateway/run.sh, which brings the services up.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <sstream>
#include <unistd.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "labelloop/v1/labeling.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using labelloop::v1::LabelingService;

struct Options {
  std::string labeling, gateway_grpc, gateway_http_host = "127.0.0.1";
  // One access token per annotator: client c uses tokens[c % size] (through the gateway
  // the annotator is the signed-in user, and one user's clients would share leases).
  std::vector<std::string> tokens;
  int gateway_http_port = 0;
  int64_t project = 0;
  int clients = 64;
  int labeling_pid = 0, gateway_pid = 0;
  double seconds = 5;
  int runs = 3;
};

struct Result {
  double rps = 0, p50_ms = 0, p99_ms = 0;
  int64_t errors = 0;
  // CPU time (user + system) each server process spent per completed request: a figure
  // that holds on a shared, overloaded machine where wall-clock rates do not.
  double labeling_cpu_us = 0, gateway_cpu_us = 0;
};

// utime + stime of a process, in microseconds (0 when unknown).
double CpuMicros(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) {
      stime = std::stod(field);
      break;
    }
  }
  return (utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

enum class Target { kDirect, kGatewayGrpc, kGatewayHttp };
enum class Work { kRead, kCycle };

const char* Name(Target t) {
  return t == Target::kDirect ? "direct labeling gRPC"
         : t == Target::kGatewayGrpc ? "gateway gRPC" : "gateway HTTP/JSON";
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& addr, int i) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
  args.SetInt("labelloop.bench.channel", i);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

Result Run(const Options& o, Target target, Work work) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> errors{0};
  std::vector<std::vector<double>> lat(static_cast<size_t>(o.clients));
  std::vector<std::thread> threads;
  // 8 connections shared by the clients (as a real client pool would).
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 8; ++i) {
    channels.push_back(NewChannel(target == Target::kDirect ? o.labeling : o.gateway_grpc, i));
  }
  const double lab_cpu0 = CpuMicros(o.labeling_pid), gw_cpu0 = CpuMicros(o.gateway_pid);
  const auto start = Clock::now();
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      auto& mine = lat[static_cast<size_t>(c)];
      auto stub = LabelingService::NewStub(channels[static_cast<size_t>(c) % channels.size()]);
      httplib::Client http(o.gateway_http_host, o.gateway_http_port);
      http.set_keep_alive(true);
      const std::string& token = o.tokens[static_cast<size_t>(c) % o.tokens.size()];
      const httplib::Headers headers = {{"authorization", "Bearer " + token}};
      const std::string read_body = "{\"projectId\":\"" + std::to_string(o.project) + "\"}";
      const std::string claim_body =
          "{\"projectId\":\"" + std::to_string(o.project) + "\",\"n\":1}";
      auto ctx_for = [&](grpc::ClientContext* ctx) {
        if (target != Target::kDirect) ctx->AddMetadata("authorization", "Bearer " + token);
        ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      };
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = Clock::now();
        bool ok = true;
        if (target == Target::kGatewayHttp) {
          if (work == Work::kRead) {
            auto r = http.Post("/v1/LabelingService/GetProject", headers, read_body,
                               "application/json");
            ok = r && r->status == 200;
          } else {
            auto r = http.Post("/v1/LabelingService/ClaimNext", headers, claim_body,
                               "application/json");
            ok = r && r->status == 200;
            if (ok) {
              auto j = nlohmann::json::parse(r->body, nullptr, false);
              if (j.is_discarded() || !j.contains("items") || j["items"].empty()) {
                ok = false;
              } else {
                nlohmann::json sub = {{"itemId", j["items"][0]["lease"]["itemId"]},
                                      {"leaseToken", j["items"][0]["lease"]["token"]},
                                      {"classes", {"pos"}}};
                auto r2 = http.Post("/v1/LabelingService/SubmitLabel", headers, sub.dump(),
                                    "application/json");
                ok = r2 && r2->status == 200;
              }
            }
          }
        } else if (work == Work::kRead) {
          grpc::ClientContext ctx;
          ctx_for(&ctx);
          labelloop::v1::GetProjectRequest req;
          req.set_project_id(o.project);
          labelloop::v1::Project p;
          ok = stub->GetProject(&ctx, req, &p).ok();
        } else {
          labelloop::v1::ClaimNextRequest cr;
          cr.set_project_id(o.project);
          cr.set_n(1);
          cr.set_annotator("bench-" + std::to_string(c));
          labelloop::v1::ClaimNextResponse claimed;
          grpc::ClientContext ctx;
          ctx_for(&ctx);
          ok = stub->ClaimNext(&ctx, cr, &claimed).ok() && claimed.items_size() == 1;
          if (ok) {
            labelloop::v1::SubmitLabelRequest sr;
            sr.set_item_id(claimed.items(0).lease().item_id());
            sr.set_lease_token(claimed.items(0).lease().token());
            sr.add_classes("pos");
            labelloop::v1::SubmitLabelResponse resp;
            grpc::ClientContext ctx2;
            ctx_for(&ctx2);
            ok = stub->SubmitLabel(&ctx2, sr, &resp).ok();
          }
        }
        if (ok) {
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        } else {
          errors.fetch_add(1);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double lab_cpu = CpuMicros(o.labeling_pid) - lab_cpu0;
  const double gw_cpu = CpuMicros(o.gateway_pid) - gw_cpu0;
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.errors = errors.load();
  if (all.empty()) return r;
  r.rps = static_cast<double>(all.size()) / secs;
  r.p50_ms = all[all.size() / 2];
  r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  r.labeling_cpu_us = lab_cpu / static_cast<double>(all.size());
  r.gateway_cpu_us = gw_cpu / static_cast<double>(all.size());
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--labeling") o.labeling = v;
    else if (k == "--gateway-grpc") o.gateway_grpc = v;
    else if (k == "--gateway-http-port") o.gateway_http_port = std::stoi(v);
    else if (k == "--tokens-file") {
      std::ifstream f(v);
      for (std::string line; std::getline(f, line);) {
        if (!line.empty()) o.tokens.push_back(line);
      }
    }
    else if (k == "--project") o.project = std::stoll(v);
    else if (k == "--clients") o.clients = std::stoi(v);
    else if (k == "--seconds") o.seconds = std::stod(v);
    else if (k == "--runs") o.runs = std::stoi(v);
    else if (k == "--labeling-pid") o.labeling_pid = std::stoi(v);
    else if (k == "--gateway-pid") o.gateway_pid = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (o.tokens.empty()) {
    std::fprintf(stderr, "--tokens-file: no tokens\n");
    return 2;
  }
  std::printf("workload: %d concurrent clients over loopback, %.1f s per run, %d runs "
              "(interleaved), medians; cores: %u\n",
              o.clients, o.seconds, o.runs, std::thread::hardware_concurrency());
  for (Work w : {Work::kRead, Work::kCycle}) {
    std::map<Target, std::vector<Result>> results;
    for (int run = 0; run < o.runs; ++run) {
      for (Target t : {Target::kDirect, Target::kGatewayGrpc, Target::kGatewayHttp}) {
        results[t].push_back(Run(o, t, w));
      }
    }
    std::printf("\n%s\n", w == Work::kRead ? "read: GetProject"
                                           : "cycle: ClaimNext(n=1) + SubmitLabel");
    std::printf("  %-22s %10s %9s %9s %8s %12s %12s %s\n", "target", "req/s", "p50 ms",
                "p99 ms", "errors", "lab CPU us", "gw CPU us", "  vs direct");
    double direct_rps = 0, direct_p50 = 0;
    for (Target t : {Target::kDirect, Target::kGatewayGrpc, Target::kGatewayHttp}) {
      std::vector<double> rps, p50, p99, lcpu, gcpu;
      int64_t errors = 0;
      for (const auto& r : results[t]) {
        rps.push_back(r.rps);
        p50.push_back(r.p50_ms);
        p99.push_back(r.p99_ms);
        lcpu.push_back(r.labeling_cpu_us);
        gcpu.push_back(r.gateway_cpu_us);
        errors += r.errors;
      }
      const double mr = Median(rps), m50 = Median(p50), m99 = Median(p99);
      if (t == Target::kDirect) {
        direct_rps = mr;
        direct_p50 = m50;
      }
      char rel[96] = "";
      if (t != Target::kDirect && direct_rps > 0) {
        std::snprintf(rel, sizeof rel, "  throughput %+.1f%%, p50 %+.2f ms",
                      100.0 * (mr - direct_rps) / direct_rps, m50 - direct_p50);
      }
      std::printf("  %-22s %10.0f %9.2f %9.2f %8lld %12.0f %12.0f%s\n", Name(t), mr, m50, m99,
                  static_cast<long long>(errors), Median(lcpu), Median(gcpu), rel);
    }
  }
  return 0;
}
