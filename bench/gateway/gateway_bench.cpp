// Requests/s and p50/p99 latency of a read RPC (GetProject) and of the claim+submit
// cycle (ClaimNext + SubmitLabel), with N concurrent clients over loopback: direct to
// labeling over gRPC, through the gateway over gRPC, and through the gateway over
// HTTP/JSON with keep-alive. Every configuration runs `runs` times, interleaved; the
// medians are printed. Started by bench/gateway/run.sh, which brings the services up.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine.hpp"
#include "labelloop/v1/labeling.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using labelloop::v1::LabelingService;

struct Options {
  std::string labeling, gateway_grpc, gateway_http_host = "127.0.0.1";
  // The "floor" target: h2_passthrough in front of labeling (see h2_passthrough.cpp).
  std::string floor_grpc;
  int floor_pid = 0;
  // One access token per annotator: client c uses tokens[c % size] (through the gateway
  // the annotator is the signed-in user, and one user's clients would share leases).
  std::vector<std::string> tokens;
  int gateway_http_port = 0;
  int64_t project = 0;
  int clients = 64;
  int labeling_pid = 0, gateway_pid = 0;
  double seconds = 5;
  int runs = 3;
  // Paced runs offer this fraction of the direct path's closed-loop throughput (0: none).
  double paced_fraction = 0.5;
  std::string targets = "direct,floor,grpc,http";
  std::string works = "read,cycle";
};

struct Result {
  double rps = 0, p50_ms = 0, p99_ms = 0;
  int64_t errors = 0;
  // CPU time (user + system) each server process spent per completed request: a figure
  // that holds on a shared, overloaded machine where wall-clock rates do not.
  double labeling_cpu_us = 0, gateway_cpu_us = 0;
  // The gateway's thread switches (voluntary and not) per completed request: hand-offs
  // between its threads show here before they show in CPU time.
  double gateway_switches = 0;
  // The same for labeling: a call that reaches it through the gateway may cost it more
  // sleeps and wake-ups than a direct one, which is CPU on this kind of machine.
  double labeling_switches = 0;
  // Share of the machine's CPU time that was busy during the run, in %.
  double machine_busy = 0;
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

// Context switches of every thread of a process so far (0 when unknown); threads that
// ended are not counted, which the gateway's long-lived threads make irrelevant.
double ContextSwitches(int pid) {
  if (pid <= 0) return 0;
  double total = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream f(task.path() / "status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.find("ctxt_switches:") != std::string::npos) {
        total += std::stod(line.substr(line.find(':') + 1));
      }
    }
  }
  return total;
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string one, five, fifteen;
  f >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

enum class Target { kDirect, kGatewayGrpc, kGatewayHttp, kFloor };
enum class Work { kRead, kCycle };

const char* Name(Target t) {
  return t == Target::kDirect        ? "direct labeling gRPC"
         : t == Target::kFloor       ? "floor: bare HTTP/2 hop"
         : t == Target::kGatewayGrpc ? "gateway gRPC"
                                     : "gateway HTTP/JSON";
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& addr, int i) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
  args.SetInt("labelloop.bench.channel", i);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

// The first few failure reasons of a run, printed once (a benchmark that hides why calls
// fail measures nothing).
class ErrorLog {
 public:
  void Add(const std::string& what) {
    std::lock_guard lock(mu_);
    if (++counts_[what] == 1 && counts_.size() <= 5) {
      std::fprintf(stderr, "  (error: %s)\n", what.c_str());
    }
  }

 private:
  std::mutex mu_;
  std::map<std::string, int64_t> counts_;
};

// One client: the connection it uses and the calls of a workload.
class Client {
 public:
  Client(const Options& o, Target target, int c, std::shared_ptr<grpc::Channel> channel)
      : o_(o),
        target_(target),
        c_(c),
        stub_(LabelingService::NewStub(std::move(channel))),
        http_(o.gateway_http_host, o.gateway_http_port),
        token_(o.tokens[static_cast<size_t>(c) % o.tokens.size()]),
        headers_{{"authorization", "Bearer " + token_}},
        read_body_("{\"projectId\":\"" + std::to_string(o.project) + "\"}"),
        claim_body_("{\"projectId\":\"" + std::to_string(o.project) + "\",\"n\":1}") {
    http_.set_keep_alive(true);
    http_.set_read_timeout(10, 0);
    http_.set_tcp_nodelay(true);
  }

  // One call (read) or one claim+submit (cycle); on failure *error says why.
  bool Once(Work work, std::string* error) {
    if (target_ == Target::kGatewayHttp)
      return work == Work::kRead ? HttpRead(error) : HttpCycle(error);
    return work == Work::kRead ? GrpcRead(error) : GrpcCycle(error);
  }

 private:
  bool HttpPost(const char* path, const std::string& body, std::string* answer,
                std::string* error) {
    auto r = http_.Post(path, headers_, body, "application/json");
    if (!r) {
      *error = std::string("HTTP ") + path + ": " + httplib::to_string(r.error());
      return false;
    }
    if (r->status != 200) {
      *error = std::string("HTTP ") + path + ": " + std::to_string(r->status) + " " +
               r->body.substr(0, 160);
      return false;
    }
    *answer = std::move(r->body);
    return true;
  }

  bool HttpRead(std::string* error) {
    std::string answer;
    return HttpPost("/v1/LabelingService/GetProject", read_body_, &answer, error);
  }

  bool HttpCycle(std::string* error) {
    std::string answer;
    if (!HttpPost("/v1/LabelingService/ClaimNext", claim_body_, &answer, error)) return false;
    auto j = nlohmann::json::parse(answer, nullptr, false);
    if (j.is_discarded() || !j.contains("items") || j["items"].empty()) {
      *error = "ClaimNext answered no item";
      return false;
    }
    nlohmann::json sub = {{"itemId", j["items"][0]["lease"]["itemId"]},
                          {"leaseToken", j["items"][0]["lease"]["token"]},
                          {"classes", {"pos"}}};
    return HttpPost("/v1/LabelingService/SubmitLabel", sub.dump(), &answer, error);
  }

  void Prepare(grpc::ClientContext* ctx) const {
    if (target_ != Target::kDirect) ctx->AddMetadata("authorization", "Bearer " + token_);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  static bool Check(const grpc::Status& s, const char* what, std::string* error) {
    if (s.ok()) return true;
    *error = std::string(what) + ": " + std::to_string(static_cast<int>(s.error_code())) + " " +
             s.error_message().substr(0, 160);
    return false;
  }

  bool GrpcRead(std::string* error) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    labelloop::v1::GetProjectRequest req;
    req.set_project_id(o_.project);
    labelloop::v1::Project p;
    return Check(stub_->GetProject(&ctx, req, &p), "GetProject", error);
  }

  bool GrpcCycle(std::string* error) {
    labelloop::v1::ClaimNextRequest cr;
    cr.set_project_id(o_.project);
    cr.set_n(1);
    cr.set_annotator("bench-" + std::to_string(c_));
    labelloop::v1::ClaimNextResponse claimed;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    if (!Check(stub_->ClaimNext(&ctx, cr, &claimed), "ClaimNext", error)) return false;
    if (claimed.items_size() != 1) {
      *error = "ClaimNext answered no item";
      return false;
    }
    labelloop::v1::SubmitLabelRequest sr;
    sr.set_item_id(claimed.items(0).lease().item_id());
    sr.set_lease_token(claimed.items(0).lease().token());
    sr.add_classes("pos");
    labelloop::v1::SubmitLabelResponse resp;
    grpc::ClientContext ctx2;
    Prepare(&ctx2);
    return Check(stub_->SubmitLabel(&ctx2, sr, &resp), "SubmitLabel", error);
  }

  const Options& o_;
  Target target_;
  int c_;
  std::unique_ptr<LabelingService::Stub> stub_;
  httplib::Client http_;
  std::string token_;
  httplib::Headers headers_;
  std::string read_body_, claim_body_;
};

// rate == 0: closed loop, every client sends its next call as soon as the last one
// answers (throughput at saturation). rate > 0: each client sends on a fixed schedule
// (rate / clients per second, clients staggered) and latency is measured from the
// scheduled send time, so a path that falls behind shows it (no coordinated omission).
Result Run(const Options& o, Target target, Work work, double rate) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> errors{0};
  ErrorLog error_log;
  std::vector<std::vector<double>> lat(static_cast<size_t>(o.clients));
  std::vector<std::thread> threads;
  // 8 connections shared by the clients (as a real client pool would).
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 8; ++i) {
    channels.push_back(NewChannel(target == Target::kDirect  ? o.labeling
                                  : target == Target::kFloor ? o.floor_grpc
                                                             : o.gateway_grpc,
                                  i));
  }
  // The "gw" columns are the process between client and labeling: the gateway, or the
  // pass-through for the floor target.
  const int hop_pid = target == Target::kFloor ? o.floor_pid : o.gateway_pid;
  const double lab_cpu0 = CpuMicros(o.labeling_pid), gw_cpu0 = CpuMicros(hop_pid);
  const double gw_switches0 = ContextSwitches(hop_pid);
  const double lab_switches0 = ContextSwitches(o.labeling_pid);
  const auto machine0 = labelloop::bench::MachineCpu();
  const auto start = Clock::now();
  const auto interval = rate > 0 ? std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(o.clients / rate))
                                 : Clock::duration::zero();
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      auto& mine = lat[static_cast<size_t>(c)];
      Client client(o, target, c, channels[static_cast<size_t>(c) % channels.size()]);
      auto next = start + interval * c / o.clients;
      std::string error;
      while (!stop.load(std::memory_order_relaxed)) {
        if (rate > 0) std::this_thread::sleep_until(next);
        const auto t0 = rate > 0 ? next : Clock::now();
        next += interval;
        if (client.Once(work, &error)) {
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        } else {
          errors.fetch_add(1);
          error_log.Add(error);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double lab_cpu = CpuMicros(o.labeling_pid) - lab_cpu0;
  const double gw_cpu = CpuMicros(hop_pid) - gw_cpu0;
  const double gw_switches = ContextSwitches(hop_pid) - gw_switches0;
  const double lab_switches = ContextSwitches(o.labeling_pid) - lab_switches0;
  const auto machine1 = labelloop::bench::MachineCpu();
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
  r.gateway_switches = gw_switches / static_cast<double>(all.size());
  r.labeling_switches = lab_switches / static_cast<double>(all.size());
  r.machine_busy = labelloop::bench::BusyPercent(machine0, machine1);
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Summary {
  double rps = 0, p50 = 0, p99 = 0, lab_cpu = 0, gw_cpu = 0, gw_switches = 0, lab_switches = 0,
         busy = 0;
  int64_t errors = 0;
};

Summary Summarize(const std::vector<Result>& results) {
  std::vector<double> rps, p50, p99, lcpu, gcpu, gsw, lsw, busy;
  Summary s;
  for (const auto& r : results) {
    rps.push_back(r.rps);
    p50.push_back(r.p50_ms);
    p99.push_back(r.p99_ms);
    lcpu.push_back(r.labeling_cpu_us);
    gcpu.push_back(r.gateway_cpu_us);
    gsw.push_back(r.gateway_switches);
    lsw.push_back(r.labeling_switches);
    busy.push_back(r.machine_busy);
    s.errors += r.errors;
  }
  s.rps = Median(rps);
  s.p50 = Median(p50);
  s.p99 = Median(p99);
  s.lab_cpu = Median(lcpu);
  s.gw_cpu = Median(gcpu);
  s.gw_switches = Median(gsw);
  s.lab_switches = Median(lsw);
  s.busy = Median(busy);
  return s;
}

// Runs every target `runs` times, interleaved, and prints the medians; returns them.
std::map<Target, Summary> Measure(const Options& o, const std::vector<Target>& targets, Work w,
                                  double rate) {
  std::map<Target, std::vector<Result>> results;
  for (int run = 0; run < o.runs; ++run) {
    for (Target t : targets) results[t].push_back(Run(o, t, w, rate));
  }
  std::printf("  %-22s %10s %9s %9s %8s %12s %8s %12s %8s %7s %s\n", "target", "req/s", "p50 ms",
              "p99 ms", "errors", "lab CPU us", "lab sw", "gw CPU us", "gw sw", "busy %",
              "  vs direct");
  std::map<Target, Summary> out;
  for (Target t : targets) out[t] = Summarize(results[t]);
  const Summary* direct = out.count(Target::kDirect) ? &out[Target::kDirect] : nullptr;
  for (Target t : targets) {
    const Summary& s = out[t];
    char rel[96] = "";
    if (t != Target::kDirect && direct != nullptr && direct->rps > 0) {
      std::snprintf(rel, sizeof rel, "  throughput %+.1f%%, p50 %+.2f ms",
                    100.0 * (s.rps - direct->rps) / direct->rps, s.p50 - direct->p50);
    }
    std::printf("  %-22s %10.0f %9.2f %9.2f %8lld %12.0f %8.2f %12.0f %8.2f %7.1f%s\n", Name(t),
                s.rps, s.p50, s.p99, static_cast<long long>(s.errors), s.lab_cpu, s.lab_switches,
                s.gw_cpu, s.gw_switches, s.busy, rel);
  }
  std::fflush(stdout);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--labeling")
      o.labeling = v;
    else if (k == "--gateway-grpc")
      o.gateway_grpc = v;
    else if (k == "--floor-grpc")
      o.floor_grpc = v;
    else if (k == "--floor-pid")
      o.floor_pid = std::stoi(v);
    else if (k == "--gateway-http-port")
      o.gateway_http_port = std::stoi(v);
    else if (k == "--tokens-file") {
      std::ifstream f(v);
      for (std::string line; std::getline(f, line);) {
        if (!line.empty()) o.tokens.push_back(line);
      }
    } else if (k == "--project")
      o.project = std::stoll(v);
    else if (k == "--clients")
      o.clients = std::stoi(v);
    else if (k == "--seconds")
      o.seconds = std::stod(v);
    else if (k == "--runs")
      o.runs = std::stoi(v);
    else if (k == "--labeling-pid")
      o.labeling_pid = std::stoi(v);
    else if (k == "--gateway-pid")
      o.gateway_pid = std::stoi(v);
    else if (k == "--paced-fraction")
      o.paced_fraction = std::stod(v);
    else if (k == "--targets")
      o.targets = v;
    else if (k == "--works")
      o.works = v;
    else {
      std::fprintf(stderr,
                   "unknown option %s (options: --clients --seconds --runs --paced-fraction "
                   "--targets direct,floor,grpc,http --works read,cycle)\n",
                   k.c_str());
      return 2;
    }
  }
  if (o.tokens.empty()) {
    std::fprintf(stderr, "--tokens-file: no tokens\n");
    return 2;
  }
  std::vector<Target> targets;
  if (o.targets.find("direct") != std::string::npos) targets.push_back(Target::kDirect);
  if (o.targets.find("floor") != std::string::npos && !o.floor_grpc.empty()) {
    targets.push_back(Target::kFloor);
  }
  if (o.targets.find("grpc") != std::string::npos) targets.push_back(Target::kGatewayGrpc);
  if (o.targets.find("http") != std::string::npos) targets.push_back(Target::kGatewayHttp);
  std::vector<Work> works;
  if (o.works.find("read") != std::string::npos) works.push_back(Work::kRead);
  if (o.works.find("cycle") != std::string::npos) works.push_back(Work::kCycle);
  std::printf(
      "workload: %d concurrent clients over loopback (gRPC: 8 HTTP/2 connections; "
      "HTTP/JSON: one keep-alive connection per client), %.1f s per run, %d runs per "
      "configuration (interleaved), medians over runs; cores: %u; load average at "
      "start: %s\n",
      o.clients, o.seconds, o.runs, std::thread::hardware_concurrency(), LoadAverage().c_str());
  for (Work w : works) {
    const char* name =
        w == Work::kRead ? "read: GetProject" : "cycle: ClaimNext(n=1) + SubmitLabel";
    std::printf(
        "\n%s — CLOSED LOOP (each client sends again as soon as answered): THROUGHPUT "
        "at saturation; p50/p99 here are mostly queueing\n",
        name);
    auto closed = Measure(o, targets, w, 0);
    if (o.paced_fraction <= 0 || !closed.count(Target::kDirect)) continue;
    const double rate = o.paced_fraction * closed[Target::kDirect].rps;
    if (rate <= 0) continue;
    std::printf(
        "%s — PACED at %.0f req/s offered (%.0f%% of the direct closed-loop "
        "throughput, same rate for every target, %d clients on a fixed schedule, "
        "latency from the scheduled send): LATENCY; the p50 difference is what the "
        "gateway adds\n",
        name, rate, 100 * o.paced_fraction, o.clients);
    Measure(o, targets, w, rate);
  }
  std::printf("\nload average at end: %s\n", LoadAverage().c_str());
  return 0;
}
