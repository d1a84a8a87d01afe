// Prometheus metrics: counters, gauges and histograms with labels, rendered in the text
// exposition format (version 0.0.4). One Registry per process, passed to whoever records.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace labelloop::metrics {

using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  void Increment(double by = 1.0);
  double Value() const;

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v); }
  void Add(double by);
  double Value() const { return value_.load(); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Snap() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> buckets_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Default latency buckets in seconds, 0.5 ms to 10 s.
std::vector<double> LatencyBuckets();

class Registry {
 public:
  // The same name and labels always return the same instrument.
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const Labels& labels = {},
                          const std::vector<double>& bounds = LatencyBuckets());
  // A gauge computed at scrape time (e.g. pool connections in use).
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::function<double()> read, const Labels& labels = {});

  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
    std::map<Labels, std::function<double()>> callbacks;
  };
  Family& FamilyFor(const std::string& name, Type type, const std::string& help);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Serves GET /metrics from a Registry on its own thread.
class HttpExporter {
 public:
  HttpExporter(Registry& registry, std::string host, int port);
  ~HttpExporter();
  HttpExporter(const HttpExporter&) = delete;
  HttpExporter& operator=(const HttpExporter&) = delete;
  // Binds and starts serving; returns false when the port cannot be bound.
  bool Start();
  int port() const { return port_; }
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string host_;
  int port_;
};

}  // namespace labelloop::metrics
