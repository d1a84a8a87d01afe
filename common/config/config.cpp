#include "common/config/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;  // NOLINT: POSIX

namespace labelloop::config {
namespace {

std::string Trim(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool ParseInt(const std::string& text, int64_t* out) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, *out);
  return ec == std::errc() && ptr == end && !text.empty();
}

bool ParseBool(const std::string& text, bool* out) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "1" || t == "true" || t == "yes" || t == "on") {
    *out = true;
    return true;
  }
  if (t == "0" || t == "false" || t == "no" || t == "off") {
    *out = false;
    return true;
  }
  return false;
}

bool ParseDouble(const std::string& text, double* out) {
  if (text.empty()) return false;
  try {
    size_t used = 0;
    *out = std::stod(text, &used);
    return used == text.size();
  } catch (const std::exception&) {
    return false;
  }
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kInt:
      return "integer";
    case Kind::kBool:
      return "bool";
    case Kind::kDouble:
      return "number";
    case Kind::kString:
      break;
  }
  return "string";
}

}  // namespace

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

DotEnvResult ParseDotEnv(const std::string& text, const std::string& file_name) {
  DotEnvResult result;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    if (t.rfind("export ", 0) == 0) t = Trim(t.substr(7));
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0) {
      result.error =
          file_name + " line " + std::to_string(line_no) + ": expected KEY=VALUE, got '" + t + "'";
      return result;
    }
    std::string key = Trim(t.substr(0, eq));
    std::string value = Trim(t.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    result.values[key] = value;
  }
  return result;
}

Settings::Settings(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {}

void Settings::Add(Setting setting) {
  Entry entry;
  entry.value = setting.default_value;
  entry.setting = std::move(setting);
  entries_.push_back(std::move(entry));
}

namespace {
Setting Make(const std::string& name, Kind kind, const std::string& def, const std::string& help) {
  Setting s;
  s.name = name;
  s.kind = kind;
  s.default_value = def;
  s.help = help;
  return s;
}
}  // namespace

void Settings::AddString(const std::string& name, const std::string& def, const std::string& help) {
  Add(Make(name, Kind::kString, def, help));
}

void Settings::AddRequiredString(const std::string& name, const std::string& help) {
  Setting s = Make(name, Kind::kString, "", help);
  s.required = true;
  Add(std::move(s));
}

void Settings::AddSecret(const std::string& name, const std::string& def, const std::string& help) {
  Setting s = Make(name, Kind::kString, def, help);
  s.secret = true;
  Add(std::move(s));
}

void Settings::AddChoice(const std::string& name, const std::string& def,
                         std::vector<std::string> choices, const std::string& help) {
  Setting s = Make(name, Kind::kString, def, help);
  s.choices = std::move(choices);
  Add(std::move(s));
}

void Settings::AddInt(const std::string& name, int64_t def, const std::string& help, int64_t min,
                      int64_t max) {
  Setting s = Make(name, Kind::kInt, std::to_string(def), help);
  s.min_int = min;
  s.max_int = max;
  Add(std::move(s));
}

void Settings::AddBool(const std::string& name, bool def, const std::string& help) {
  Add(Make(name, Kind::kBool, def ? "true" : "false", help));
}

void Settings::AddDouble(const std::string& name, double def, const std::string& help) {
  std::ostringstream os;
  os << def;
  Add(Make(name, Kind::kDouble, os.str(), help));
}

std::string Settings::EnvName(const std::string& name) {
  std::string env = "LABELLOOP_";
  for (char c : name) {
    env += (c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env;
}

std::string Settings::Validate(const Entry& entry) const {
  const Setting& s = entry.setting;
  const std::string where = "setting '" + s.name + "' (" + EnvName(s.name) + " / --" + s.name +
                            ", from " + entry.source + ")";
  if (s.required && entry.value.empty()) {
    return "missing required " + where + ": " + s.help;
  }
  switch (s.kind) {
    case Kind::kInt: {
      int64_t v = 0;
      if (!ParseInt(entry.value, &v)) {
        return where + ": '" + entry.value + "' is not an integer";
      }
      if (v < s.min_int || v > s.max_int) {
        return where + ": " + entry.value + " is outside [" + std::to_string(s.min_int) + ", " +
               std::to_string(s.max_int) + "]";
      }
      break;
    }
    case Kind::kBool: {
      bool b = false;
      if (!ParseBool(entry.value, &b)) {
        return where + ": '" + entry.value + "' is not a bool (true/false/1/0/yes/no)";
      }
      break;
    }
    case Kind::kDouble: {
      double d = 0;
      if (!ParseDouble(entry.value, &d)) return where + ": '" + entry.value + "' is not a number";
      break;
    }
    case Kind::kString:
      if (!s.choices.empty() &&
          std::find(s.choices.begin(), s.choices.end(), entry.value) == s.choices.end()) {
        std::string list;
        for (const auto& c : s.choices) list += (list.empty() ? "" : ", ") + c;
        return where + ": '" + entry.value + "' is not one of: " + list;
      }
      break;
  }
  return "";
}

LoadResult Settings::Load(int argc, const char* const* argv, const Environment& env) {
  LoadResult result;
  // Flags are parsed first (but applied last) because --env-file picks the .env file.
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      result.help_shown = true;
      return result;
    }
    if (arg.rfind("--", 0) != 0) {
      result.error = "unexpected argument '" + arg + "' (settings are given as --name value)";
      return result;
    }
    std::string name = arg.substr(2);
    std::string value;
    auto eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      bool is_bool = false;
      for (const auto& e : entries_) {
        if (e.setting.name == name && e.setting.kind == Kind::kBool) is_bool = true;
      }
      if (is_bool && (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0)) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        result.error = "flag --" + name + " needs a value";
        return result;
      }
    }
    bool known = name == "env-file";
    for (const auto& e : entries_) known = known || e.setting.name == name;
    if (!known) {
      result.error = "unknown flag --" + name + " (see --help)";
      return result;
    }
    flags[name] = value;
  }

  std::string env_file;
  bool env_file_explicit = false;
  if (flags.count("env-file") != 0) {
    env_file = flags["env-file"];
    env_file_explicit = true;
  } else if (env.count("LABELLOOP_ENV_FILE") != 0) {
    env_file = env.at("LABELLOOP_ENV_FILE");
    env_file_explicit = true;
  } else {
    env_file = ".env";
  }
  Environment dotenv;
  std::ifstream file;
  if (!env_file.empty()) file.open(env_file);  // an empty name means "no .env file"
  if (file) {
    std::stringstream buffer;
    buffer << file.rdbuf();
    auto parsed = ParseDotEnv(buffer.str(), env_file);
    if (!parsed.error.empty()) {
      result.error = parsed.error;
      return result;
    }
    dotenv = std::move(parsed.values);
  } else if (env_file_explicit && !env_file.empty()) {
    result.error = "env file '" + env_file + "' cannot be read";
    return result;
  }

  for (auto& entry : entries_) {
    const std::string env_name = EnvName(entry.setting.name);
    if (auto it = dotenv.find(env_name); it != dotenv.end()) {
      entry.value = it->second;
      entry.source = ".env";
    }
    if (auto it = env.find(env_name); it != env.end()) {
      entry.value = it->second;
      entry.source = "environment";
    }
    if (auto it = flags.find(entry.setting.name); it != flags.end()) {
      entry.value = it->second;
      entry.source = "flag";
    }
    if (std::string err = Validate(entry); !err.empty()) {
      result.error = err;
      return result;
    }
  }
  return result;
}

const Settings::Entry& Settings::Find(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e.setting.name == name) return e;
  }
  throw std::logic_error("setting '" + name + "' was never declared");
}

std::string Settings::GetString(const std::string& name) const { return Find(name).value; }

int64_t Settings::GetInt(const std::string& name) const {
  int64_t v = 0;
  ParseInt(Find(name).value, &v);
  return v;
}

bool Settings::GetBool(const std::string& name) const {
  bool b = false;
  ParseBool(Find(name).value, &b);
  return b;
}

double Settings::GetDouble(const std::string& name) const {
  double d = 0;
  ParseDouble(Find(name).value, &d);
  return d;
}

std::string Settings::SourceOf(const std::string& name) const { return Find(name).source; }

std::string Settings::Help() const {
  std::ostringstream os;
  os << program_ << " — " << description_ << "\n\n"
     << "Each setting is read, weakest first, from its default, a .env file (--env-file, "
        "LABELLOOP_ENV_FILE or ./.env), the environment variable, and the flag.\n\n"
     << "Settings:\n";
  for (const auto& e : entries_) {
    const Setting& s = e.setting;
    os << "  --" << s.name << " <" << KindName(s.kind) << ">   env " << EnvName(s.name) << "\n"
       << "      " << s.help;
    if (!s.choices.empty()) {
      os << " (one of:";
      for (const auto& c : s.choices) os << " " << c;
      os << ")";
    }
    if (s.required) {
      os << " [required]";
    } else if (s.secret) {
      os << " [secret; default " << (s.default_value.empty() ? "empty" : "set") << "]";
    } else {
      os << " [default: " << (s.default_value.empty() ? "\"\"" : s.default_value) << "]";
    }
    os << "\n";
  }
  os << "  --env-file <path>   env LABELLOOP_ENV_FILE\n      .env file to read [default: ./.env "
        "when present]\n";
  return os.str();
}

}  // namespace labelloop::config
