#include "common/log/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "common/json/json_text.hpp"

namespace labelloop::log {
namespace {

thread_local std::string g_request_id;  // NOLINT: per-thread request context by design

// %* : " rid=<id>" in plain format when a request id is set, nothing otherwise.
class PlainRequestIdFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& /*msg*/, const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    if (g_request_id.empty()) return;
    static constexpr std::string_view kPrefix = " rid=";
    dest.append(kPrefix.data(), kPrefix.data() + kPrefix.size());
    dest.append(g_request_id.data(), g_request_id.data() + g_request_id.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PlainRequestIdFlag>();
  }
};

// %* in JSON format: ,"request_id":"<id>" when set.
class JsonRequestIdFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& /*msg*/, const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    if (g_request_id.empty()) return;
    std::string s = ",\"request_id\":\"" + JsonEscape(g_request_id) + "\"";
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonRequestIdFlag>();
  }
};

// %J : the message, escaped for JSON.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    std::string s = JsonEscape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  json::AppendJsonEscaped(&out, text);
  return out;
}

void Setup(const std::string& service, const std::string& level, Format format,
           spdlog::sink_ptr sink) {
  if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(service, sink);
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (format == Format::kJson) {
    formatter->add_flag<JsonRequestIdFlag>('*').add_flag<JsonMessageFlag>('J').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","service":")" + JsonEscape(service) +
        R"("%*,"thread":%t,"msg":"%J"})");
  } else {
    formatter->add_flag<PlainRequestIdFlag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [" +
                                                             service + "]%* %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

const std::string& CurrentRequestId() { return g_request_id; }

ScopedRequestId::ScopedRequestId(std::string request_id) : previous_(std::move(g_request_id)) {
  g_request_id = std::move(request_id);
}

ScopedRequestId::~ScopedRequestId() { g_request_id = std::move(previous_); }

}  // namespace labelloop::log
