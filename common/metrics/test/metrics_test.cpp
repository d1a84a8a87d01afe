#include "common/metrics/metrics.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

namespace labelloop::metrics {
namespace {

TEST(Metrics, RendersCountersGaugesAndHistograms) {
  Registry r;
  r.GetCounter("rpc_total", "calls", {{"method", "/a/B"}, {"code", "OK"}}).Increment();
  r.GetCounter("rpc_total", "calls", {{"method", "/a/B"}, {"code", "OK"}}).Increment(2);
  r.GetGauge("pool_size", "size").Set(4);
  r.AddCallbackGauge("pool_in_use", "in use", [] { return 3.0; });
  auto& h = r.GetHistogram("latency_seconds", "latency", {{"method", "m"}}, {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string text = r.Render();
  EXPECT_NE(text.find("# TYPE rpc_total counter"), std::string::npos);
  EXPECT_NE(text.find("rpc_total{code=\"OK\",method=\"/a/B\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("pool_size 4"), std::string::npos);
  EXPECT_NE(text.find("pool_in_use 3"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{method=\"m\",le=\"0.10000000000000001\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("latency_seconds_bucket{method=\"m\",le=\"1\"} 2"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{method=\"m\",le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_count{method=\"m\"} 3"), std::string::npos);
}

TEST(Metrics, TypeClashIsALogicError) {
  Registry r;
  r.GetCounter("x", "x");
  EXPECT_THROW(r.GetGauge("x", "x"), std::logic_error);
}

TEST(Metrics, ExporterServesMetricsOverHttp) {
  Registry r;
  r.GetCounter("hits_total", "hits").Increment(7);
  HttpExporter exporter(r, "127.0.0.1", 0);
  ASSERT_TRUE(exporter.Start());
  httplib::Client client("127.0.0.1", exporter.port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("hits_total 7"), std::string::npos);
  exporter.Stop();
}

}  // namespace
}  // namespace labelloop::metrics
