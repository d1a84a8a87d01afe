#include "common/config/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace labelloop::config {
namespace {

Settings MakeSettings() {
  Settings s("labelloop-test", "test program");
  s.AddInt("grpc-port", 50052, "gRPC port", 1, 65535);
  s.AddString("pg-url", "postgresql://localhost/labelloop", "PostgreSQL URL");
  s.AddBool("json-logs", false, "JSON logs");
  s.AddChoice("log-level", "info", {"debug", "info", "warn"}, "log level");
  s.AddDouble("ratio", 0.5, "a ratio");
  return s;
}

LoadResult LoadWith(Settings& s, std::vector<const char*> args, const Environment& env) {
  args.insert(args.begin(), "prog");
  // Point at a file that does not exist so a developer's ./.env cannot leak in.
  Environment e = env;
  if (e.count("LABELLOOP_ENV_FILE") == 0) e["LABELLOOP_ENV_FILE"] = "";
  return s.Load(static_cast<int>(args.size()), args.data(), e);
}

TEST(Config, DefaultsApplyWhenNothingIsGiven) {
  Settings s = MakeSettings();
  Environment env;
  std::vector<const char*> args = {"prog"};
  ASSERT_TRUE(s.Load(1, args.data(), env).ok());
  EXPECT_EQ(s.GetInt("grpc-port"), 50052);
  EXPECT_EQ(s.SourceOf("grpc-port"), "default");
  EXPECT_FALSE(s.GetBool("json-logs"));
  EXPECT_DOUBLE_EQ(s.GetDouble("ratio"), 0.5);
}

TEST(Config, EnvironmentBeatsDotEnvAndFlagsBeatEnvironment) {
  const std::string path = ::testing::TempDir() + "/config_test.env";
  {
    std::ofstream f(path);
    f << "# comment\nexport LABELLOOP_GRPC_PORT=1111\nLABELLOOP_PG_URL=\"from-dotenv\"\n"
      << "LABELLOOP_LOG_LEVEL=warn\n";
  }
  Settings s = MakeSettings();
  Environment env = {{"LABELLOOP_ENV_FILE", path},
                     {"LABELLOOP_GRPC_PORT", "2222"},
                     {"LABELLOOP_LOG_LEVEL", "debug"}};
  auto r = LoadWith(s, {"--log-level", "info"}, env);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(s.GetString("pg-url"), "from-dotenv");
  EXPECT_EQ(s.SourceOf("pg-url"), ".env");
  EXPECT_EQ(s.GetInt("grpc-port"), 2222);
  EXPECT_EQ(s.SourceOf("grpc-port"), "environment");
  EXPECT_EQ(s.GetString("log-level"), "info");
  EXPECT_EQ(s.SourceOf("log-level"), "flag");
  std::remove(path.c_str());
}

TEST(Config, FlagWithEqualsAndBareBoolFlag) {
  Settings s = MakeSettings();
  auto r = LoadWith(s, {"--grpc-port=7", "--json-logs"}, {});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(s.GetInt("grpc-port"), 7);
  EXPECT_TRUE(s.GetBool("json-logs"));
}

TEST(Config, MalformedIntegerNamesSettingAndSource) {
  Settings s = MakeSettings();
  auto r = LoadWith(s, {}, {{"LABELLOOP_GRPC_PORT", "50x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("'grpc-port'"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("LABELLOOP_GRPC_PORT"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("environment"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("'50x' is not an integer"), std::string::npos) << r.error;
}

TEST(Config, OutOfRangeIntegerIsRejected) {
  Settings s = MakeSettings();
  auto r = LoadWith(s, {"--grpc-port", "70000"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("outside [1, 65535]"), std::string::npos) << r.error;
}

TEST(Config, MissingRequiredSettingIsNamed) {
  Settings s("p", "d");
  s.AddRequiredString("jwt-key", "key that signs tokens");
  auto r = LoadWith(s, {}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("missing required setting 'jwt-key'"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("LABELLOOP_JWT_KEY"), std::string::npos) << r.error;
}

TEST(Config, BadChoiceAndBadBoolAreRejected) {
  Settings s = MakeSettings();
  auto r = LoadWith(s, {"--log-level", "loud"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("not one of: debug, info, warn"), std::string::npos) << r.error;
  Settings s2 = MakeSettings();
  auto r2 = LoadWith(s2, {}, {{"LABELLOOP_JSON_LOGS", "maybe"}});
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error.find("not a bool"), std::string::npos) << r2.error;
}

TEST(Config, UnknownFlagAndMissingValueAreRejected) {
  Settings s = MakeSettings();
  auto r = LoadWith(s, {"--grcp-port", "1"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("unknown flag --grcp-port"), std::string::npos) << r.error;
  Settings s2 = MakeSettings();
  auto r2 = LoadWith(s2, {"--grpc-port"}, {});
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error.find("--grpc-port needs a value"), std::string::npos) << r2.error;
}

TEST(Config, ExplicitEnvFileThatCannotBeReadIsAnError) {
  Settings s = MakeSettings();
  auto r = LoadWith(s, {"--env-file", "/nonexistent/x.env"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("/nonexistent/x.env"), std::string::npos);
}

TEST(Config, MalformedDotEnvLineIsNamed) {
  auto r = ParseDotEnv("A=1\nthis line is wrong\n", "my.env");
  EXPECT_NE(r.error.find("my.env line 2"), std::string::npos) << r.error;
}

TEST(Config, HelpListsEverySettingWithDefaultAndEnvName) {
  Settings s = MakeSettings();
  auto r = LoadWith(s, {"--help"}, {});
  EXPECT_TRUE(r.help_shown);
  std::string help = s.Help();
  for (const char* needle : {"--grpc-port", "LABELLOOP_GRPC_PORT", "[default: 50052]", "--pg-url",
                             "--json-logs", "--log-level", "one of: debug info warn"}) {
    EXPECT_NE(help.find(needle), std::string::npos) << needle;
  }
}

}  // namespace
}  // namespace labelloop::config
