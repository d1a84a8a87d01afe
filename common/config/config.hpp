// Typed process settings from defaults, an optional .env file, LABELLOOP_* environment
// variables and command-line flags, in that order of precedence (flags win).
//
//   Settings s("labelloop-labeling", "The labeling service.");
//   s.AddInt("grpc-port", 50052, "gRPC listen port", 0, 65535);
//   auto r = s.Load(argc, argv, ProcessEnvironment());
//   if (!r.ok()) { std::cerr << r.error; return 2; }
//   int port = s.GetInt("grpc-port");
//
// A setting named "grpc-port" is read from LABELLOOP_GRPC_PORT and from --grpc-port.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace labelloop::config {

using Environment = std::map<std::string, std::string>;

// The current process's environment variables.
Environment ProcessEnvironment();

// Parses the text of a .env file (KEY=VALUE lines, '#' comments, optional quotes and
// `export ` prefix). Returns an error naming the line when one is malformed.
struct DotEnvResult {
  Environment values;
  std::string error;
};
DotEnvResult ParseDotEnv(const std::string& text, const std::string& file_name);

enum class Kind { kString, kInt, kBool, kDouble };

struct Setting {
  std::string name;  // flag name without dashes, e.g. "grpc-port"
  Kind kind = Kind::kString;
  std::string default_value;
  std::string help;
  bool required = false;  // must be given (non-empty) by some source
  bool secret = false;    // value never printed
  int64_t min_int = INT64_MIN;
  int64_t max_int = INT64_MAX;
  std::vector<std::string> choices;  // allowed values for strings, when non-empty
};

struct LoadResult {
  std::string error;        // empty when loading succeeded
  bool help_shown = false;  // --help was given: the caller prints Help() and exits 0
  bool ok() const { return error.empty(); }
};

class Settings {
 public:
  Settings(std::string program, std::string description);

  void Add(Setting setting);
  void AddString(const std::string& name, const std::string& def, const std::string& help);
  void AddRequiredString(const std::string& name, const std::string& help);
  void AddSecret(const std::string& name, const std::string& def, const std::string& help);
  void AddChoice(const std::string& name, const std::string& def, std::vector<std::string> choices,
                 const std::string& help);
  void AddInt(const std::string& name, int64_t def, const std::string& help,
              int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  void AddBool(const std::string& name, bool def, const std::string& help);
  void AddDouble(const std::string& name, double def, const std::string& help);

  // Reads every source. `env` stands for the process environment; the .env file is
  // --env-file, else LABELLOOP_ENV_FILE, else ./.env when it exists.
  LoadResult Load(int argc, const char* const* argv, const Environment& env);

  std::string GetString(const std::string& name) const;
  int64_t GetInt(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  // Where the value came from: "default", ".env", "environment" or "flag".
  std::string SourceOf(const std::string& name) const;

  std::string Help() const;
  static std::string EnvName(const std::string& name);

 private:
  struct Entry {
    Setting setting;
    std::string value;
    std::string source = "default";
  };
  std::string Validate(const Entry& entry) const;
  const Entry& Find(const std::string& name) const;

  std::string program_;
  std::string description_;
  std::vector<Entry> entries_;
};

}  // namespace labelloop::config
