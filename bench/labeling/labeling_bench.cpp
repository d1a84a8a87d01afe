// Load generator for the labeling benchmark (bench/labeling/run.sh).
//
//   labeling_bench create-project ADDR              prints the new project's id
//   labeling_bench run ADDR PROJECT CLIENTS SECONDS [WARMUP_SECONDS [RATE]]
//
// `run` starts CLIENTS annotators, each with its own channel (connection), each looping
// ClaimNext(n = 1) then SubmitLabel, driven asynchronously by two threads, and prints
// one line of JSON: cycles per second over the measured window, p50/p99 latency (ms)
// of each call (from the call's start to its completion event), the share of claims over
// 20 ms, how busy the machine was meanwhile (/proc/stat) and how fast it was: the CPU
// time of a fixed piece of work before the run and during it (bench/machine.hpp; on
// this VM it moves by up to a half between runs) and the CPU time per cycle of PostgreSQL,
// the service, the load generator and Redis (from /proc). With RATE (cycles/s in
// all), each annotator starts its cycles on a fixed schedule instead (paced), and a
// claim's latency counts from when its cycle was due.
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "bench/machine.hpp"
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

// One annotator's loop, driven by completion-queue events: ClaimNext(n = 1), then
// SubmitLabel of the item, again and again. The load generator shares the machine with
// the service and PostgreSQL, so it is asynchronous: two threads drive all annotators
// instead of one blocked thread per annotator (each blocked call costs two thread
// switches on the client side alone).
struct Annotator;

struct Annotator;

// Paced: wakes annotators when their cycles are due. gRPC alarms fire on millisecond
// ticks once a poller notices (measured: 1.0 ms late at the median, 4.6 ms at p99, all of
// it inside the claim latencies), so this thread sleeps until each due time and starts
// the annotator's claim itself (its completion reaches the annotator's driver).
class Pacer {
 public:
  explicit Pacer(std::function<void(Annotator*)> start) : start_(std::move(start)) {}
  void Schedule(Annotator* a);  // `start`s it when it is due
  void Run();                   // until Close
  // Fires the alarm of everything still waiting, and of any later Schedule, so that the
  // drivers see them end.
  void Close();

 private:
  std::function<void(Annotator*)> start_;
  struct Later {
    bool operator()(const Annotator* x, const Annotator* y) const;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Annotator*, std::vector<Annotator*>, Later> waiting_;
  bool closed_ = false;
};

// A completion-queue tag: which annotator, and whether its alarm (not a call) fired.
struct Event {
  Annotator* annotator;
  bool alarm;
};

struct Annotator {
  Event call_event{this, false};
  Event alarm_event{this, true};
  grpc::Alarm alarm;
  grpc::CompletionQueue* cq = nullptr;  // its driver's
  Clock::time_point due;                // paced: when this cycle was scheduled to start
  Clock::duration period{0};            // paced: time between one's cycle starts (0: closed loop)
  std::unique_ptr<LabelingService::Stub> stub;
  std::string who;
  std::unique_ptr<grpc::ClientContext> ctx;
  labelloop::v1::ClaimNextRequest claim_req;
  labelloop::v1::ClaimNextResponse claim_resp;
  labelloop::v1::SubmitLabelRequest submit_req;
  labelloop::v1::SubmitLabelResponse submit_resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<labelloop::v1::ClaimNextResponse>> claim_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<labelloop::v1::SubmitLabelResponse>> submit_rpc;
  grpc::Status status;
  bool claiming = false;
  Clock::time_point started;
  double claim_took_ms = 0;
  std::vector<double> claim_ms;
  std::vector<double> submit_ms;
  std::vector<double> start_lag_ms;  // paced: how late the load generator started each cycle
  long cycles = 0;
};

void FireNow(Annotator* a) {
  a->alarm.Set(a->cq, std::chrono::system_clock::now(), &a->alarm_event);
}

bool Pacer::Later::operator()(const Annotator* x, const Annotator* y) const {
  return x->due > y->due;
}

void Pacer::Schedule(Annotator* a) {
  std::unique_lock lock(mu_);
  if (closed_) {
    lock.unlock();
    FireNow(a);
    return;
  }
  waiting_.push(a);
  cv_.notify_one();
}

void Pacer::Run() {
  std::unique_lock lock(mu_);
  while (!closed_) {
    if (waiting_.empty()) {
      cv_.wait(lock);
      continue;
    }
    Annotator* next = waiting_.top();
    if (next->due > Clock::now()) {
      cv_.wait_until(lock, next->due);
      continue;
    }
    waiting_.pop();
    lock.unlock();
    start_(next);
    lock.lock();
  }
}

void Pacer::Close() {
  std::vector<Annotator*> left;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    while (!waiting_.empty()) {
      left.push_back(waiting_.top());
      waiting_.pop();
    }
  }
  cv_.notify_all();
  for (auto* a : left) FireNow(a);
}

// How long an annotator waits after a failed call or an empty claim before claiming again.
constexpr std::chrono::milliseconds kBackOff{20};

struct Counters {
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<long> errors{0};
  std::atomic<long> empty{0};
};

void StartClaim(Annotator& a, int64_t project, grpc::CompletionQueue* cq, bool measuring) {
  a.ctx = std::make_unique<grpc::ClientContext>();
  a.claim_req.set_project_id(project);
  a.claim_req.set_annotator(a.who);
  a.claim_req.set_n(1);
  a.claim_resp.Clear();
  a.claiming = true;
  a.started = Clock::now();
  // Paced: latency counts from when the cycle was due, so a cycle that starts late
  // because the previous one was slow shows it (no coordinated omission).
  if (a.period.count() > 0) {
    if (measuring) {
      a.start_lag_ms.push_back(
          std::chrono::duration<double, std::milli>(a.started - a.due).count());
    }
    a.started = std::min(a.started, a.due);
    a.due += a.period;
  }
  a.claim_rpc = a.stub->AsyncClaimNext(a.ctx.get(), a.claim_req, cq);
  a.claim_rpc->Finish(&a.claim_resp, &a.status, &a.call_event);
}

void StartSubmit(Annotator& a, grpc::CompletionQueue* cq) {
  const auto& lease = a.claim_resp.items(0).lease();
  a.ctx = std::make_unique<grpc::ClientContext>();
  a.submit_req.Clear();
  a.submit_req.set_item_id(lease.item_id());
  a.submit_req.set_lease_token(lease.token());
  a.submit_req.add_classes(lease.item_id() % 2 == 0 ? "a" : "b");
  a.submit_req.set_seconds_spent(3);
  a.claiming = false;
  a.started = Clock::now();
  a.submit_rpc = a.stub->AsyncSubmitLabel(a.ctx.get(), a.submit_req, cq);
  a.submit_rpc->Finish(&a.submit_resp, &a.status, &a.call_event);
}

// Drives `annotators` on `cq` until stop is set and every call in flight has ended.
void Drive(std::vector<Annotator*> annotators, int64_t project, grpc::CompletionQueue* cq,
           Counters& counters, Pacer& pacer) {
  size_t in_flight = 0;
  for (auto* a : annotators) {
    if (a->period.count() > 0) {
      pacer.Schedule(a);
    } else {
      StartClaim(*a, project, cq, counters.measuring.load());
    }
    ++in_flight;
  }
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && cq->Next(&tag, &ok)) {
    const auto* event = static_cast<Event*>(tag);
    auto& a = *event->annotator;
    --in_flight;
    if (event->alarm) {  // a paced cycle is due
      if (!counters.stop.load()) {
        StartClaim(a, project, cq, counters.measuring.load());
        ++in_flight;
      }
      continue;
    }
    const double took = std::chrono::duration<double, std::milli>(Clock::now() - a.started).count();
    bool submit_next = false;
    bool back_off = false;
    if (!ok || !a.status.ok()) {
      back_off = true;
      if (++counters.errors < 5) {
        std::cerr << (a.claiming ? "claim: " : "submit: ") << a.status.error_message() << "\n";
      }
    } else if (a.claiming) {
      if (a.claim_resp.items_size() == 0) {
        back_off = true;
        ++counters.empty;
      } else {
        a.claim_took_ms = took;
        submit_next = true;
      }
    } else if (counters.measuring.load()) {
      a.claim_ms.push_back(a.claim_took_ms);
      a.submit_ms.push_back(took);
      ++a.cycles;
    }
    if (counters.stop.load() && !submit_next) continue;
    if (submit_next) {
      StartSubmit(a, cq);
    } else if (a.period.count() > 0 && a.due > Clock::now()) {
      pacer.Schedule(&a);
    } else if (back_off) {
      // A failed call (service down, bad address) or an empty claim (nothing left) fails
      // again at once: without a pause the annotator would spin and take the machine.
      a.alarm.Set(cq, std::chrono::system_clock::now() + kBackOff, &a.alarm_event);
    } else {
      StartClaim(a, project, cq, counters.measuring.load());
    }
    ++in_flight;
  }
}

// rate > 0: paced, each annotator starts a cycle every clients / rate seconds, the
// annotators' schedules staggered evenly; 0: closed loop.
int Run(const std::string& addr, int64_t project, int clients, double seconds, double warmup,
        double rate) {
  Counters counters;
  // The machine's speed before the load starts (median of 5 fixed-work timings).
  std::vector<double> idle_work;
  for (int i = 0; i < 5; ++i) idle_work.push_back(labelloop::bench::FixedWorkMicros());
  std::vector<Annotator> annotators(static_cast<size_t>(clients));
  const auto start_at = Clock::now();
  for (int c = 0; c < clients; ++c) {
    auto& a = annotators[static_cast<size_t>(c)];
    a.stub = NewStub(addr, c + 1);
    a.who = "bench-" + std::to_string(c);
    if (rate > 0) {
      a.period = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(static_cast<double>(clients) / rate));
      a.due = start_at + a.period * c / clients;
    }
  }
  // LABELING_BENCH_THREADS overrides the number of driving threads (2).
  const char* threads_env = std::getenv("LABELING_BENCH_THREADS");
  const int driver_count =
      std::min(threads_env != nullptr ? std::max(1, std::atoi(threads_env)) : 2, clients);
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues;
  std::vector<std::thread> drivers;
  Pacer pacer([&](Annotator* a) { StartClaim(*a, project, a->cq, counters.measuring.load()); });
  std::thread pacing([&pacer] { pacer.Run(); });
  for (int d = 0; d < driver_count; ++d) {
    std::vector<Annotator*> mine;
    for (int c = d; c < clients; c += driver_count) {
      mine.push_back(&annotators[static_cast<size_t>(c)]);
    }
    queues.push_back(std::make_unique<grpc::CompletionQueue>());
    for (auto* a : mine) a->cq = queues.back().get();
    drivers.emplace_back(Drive, std::move(mine), project, queues.back().get(), std::ref(counters),
                         std::ref(pacer));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  // Who used the CPU during the run: PostgreSQL (backends and background work), the
  // service, this load generator, Redis.
  const std::map<std::string, std::vector<std::string>> groups = {
      {"postgres", {"postgres"}},
      {"labeling", {"labelloop-labeling"}},
      {"load_generator", {"labeling_bench"}},
      {"redis", {"redis-server"}}};
  counters.measuring = true;
  const auto groups0 = labelloop::bench::GroupCpuSeconds(groups);
  const auto machine0 = labelloop::bench::MachineCpu();
  auto start = Clock::now();
  // The machine's speed during the run: the fixed work timed four times a second (about
  // 1 % of a core), in CPU time, so waiting for a core does not count.
  std::vector<double> loaded_work;
  std::thread probe([&] {
    while (counters.measuring.load()) {
      loaded_work.push_back(labelloop::bench::FixedWorkMicros());
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  counters.measuring = false;
  probe.join();
  const double busy = labelloop::bench::BusyPercent(machine0, labelloop::bench::MachineCpu());
  const auto groups1 = labelloop::bench::GroupCpuSeconds(groups);
  auto elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  counters.stop = true;
  pacer.Close();
  pacing.join();
  for (auto& t : drivers) t.join();
  for (auto& q : queues) {
    q->Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (q->Next(&tag, &ok)) {
    }
  }
  std::vector<double> claims;
  std::vector<double> submits;
  std::vector<double> lags;
  long total = 0;
  for (const auto& a : annotators) {
    lags.insert(lags.end(), a.start_lag_ms.begin(), a.start_lag_ms.end());
    claims.insert(claims.end(), a.claim_ms.begin(), a.claim_ms.end());
    submits.insert(submits.end(), a.submit_ms.begin(), a.submit_ms.end());
    total += a.cycles;
  }
  std::string cpu_per_cycle;
  for (const auto& [name, used] : groups1) {
    cpu_per_cycle +=
        (cpu_per_cycle.empty() ? "" : ",") + ("\"" + name + "\":") +
        std::to_string(static_cast<long>(
            total > 0 ? (used - groups0.at(name)) * 1e6 / static_cast<double>(total) : 0));
  }
  // The share of claims over the goal's 20 ms: how far the p99 is from it.
  const auto slow = std::count_if(claims.begin(), claims.end(), [](double ms) { return ms > 20; });
  std::printf(
      "{\"cycles\":%ld,\"seconds\":%.2f,\"cycles_per_s\":%.1f,\"claim_p50_ms\":%.2f,"
      "\"claim_p99_ms\":%.2f,\"submit_p50_ms\":%.2f,\"submit_p99_ms\":%.2f,\"errors\":%ld,"
      "\"empty_claims\":%ld,\"claims_over_20ms_pct\":%.2f,\"machine_busy_pct\":%.1f,"
      "\"fixed_work_idle_us\":%.0f,\"fixed_work_us\":%.0f,\"cpu_us_per_cycle\":{%s}%s}\n",
      total, elapsed, static_cast<double>(total) / elapsed, Percentile(claims, 0.50),
      Percentile(claims, 0.99), Percentile(submits, 0.50), Percentile(submits, 0.99),
      counters.errors.load(), counters.empty.load(),
      claims.empty() ? 0.0 : 100.0 * static_cast<double>(slow) / static_cast<double>(claims.size()),
      busy, Percentile(idle_work, 0.5), Percentile(loaded_work, 0.5), cpu_per_cycle.c_str(),
      // Paced: how late cycles started after they were due (the load generator's own
      // delay, inside the claim latencies above).
      lags.empty() ? ""
                   : (",\"start_lag_p50_ms\":" + std::to_string(Percentile(lags, 0.50)) +
                      ",\"start_lag_p99_ms\":" + std::to_string(Percentile(lags, 0.99)))
                         .c_str());
  return counters.errors.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "create-project") return CreateProject(args[1]);
  if (args.size() >= 5 && args.size() <= 7 && args[0] == "run") {
    return Run(args[1], std::stoll(args[2]), std::stoi(args[3]), std::stod(args[4]),
               args.size() >= 6 ? std::stod(args[5]) : 3.0,
               args.size() == 7 ? std::stod(args[6]) : 0.0);
  }
  std::cerr << "usage: labeling_bench create-project ADDR\n"
               "       labeling_bench run ADDR PROJECT CLIENTS SECONDS [WARMUP_SECONDS [RATE]]\n";
  return 2;
}
