#include "common/log/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace labelloop::log {
namespace {

TEST(Log, PlainLinesCarryServiceAndRequestId) {
  std::ostringstream out;
  log::Setup("labeling", "info", Format::kPlain,
             std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  spdlog::info("no request");
  {
    ScopedRequestId rid("req-42");
    spdlog::info("inside request");
  }
  spdlog::debug("filtered by level");
  std::string text = out.str();
  EXPECT_NE(text.find("[labeling] no request"), std::string::npos) << text;
  EXPECT_NE(text.find("[labeling] rid=req-42 inside request"), std::string::npos) << text;
  EXPECT_EQ(text.find("filtered"), std::string::npos);
}

TEST(Log, JsonLinesParseAndEscapeMessages) {
  std::ostringstream out;
  log::Setup("training", "debug", Format::kJson,
             std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  {
    ScopedRequestId rid("abc");
    spdlog::warn("quote \" and\nnewline");
  }
  spdlog::debug("plain");
  std::istringstream lines(out.str());
  std::string line;
  std::getline(lines, line);
  auto first = nlohmann::json::parse(line);
  EXPECT_EQ(first["service"], "training");
  EXPECT_EQ(first["level"], "warning");
  EXPECT_EQ(first["request_id"], "abc");
  EXPECT_EQ(first["msg"], "quote \" and\nnewline");
  std::getline(lines, line);
  auto second = nlohmann::json::parse(line);
  EXPECT_FALSE(second.contains("request_id"));
  EXPECT_EQ(second["msg"], "plain");
}

}  // namespace
}  // namespace labelloop::log
