#include "services/labeling/storage/pg_util.hpp"

#include <nlohmann/json.hpp>

namespace labelloop::labeling::storage {

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string IntArray(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

std::vector<std::string> JsonStrings(const pqxx::field& field) {
  std::vector<std::string> out;
  if (field.is_null()) return out;
  auto parsed = nlohmann::json::parse(field.c_str(), nullptr, false);
  if (!parsed.is_array()) return out;
  for (const auto& v : parsed) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

Error ErrorFrom(const std::exception& e, const char* operation) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string state = sql->sqlstate();
    // The message PostgreSQL sends is "ERROR:  <text>\n"; keep the text.
    std::string text = sql->what();
    if (text.rfind("ERROR:", 0) == 0) text = text.substr(6);
    while (!text.empty() && (text.front() == ' ')) text.erase(text.begin());
    // Drop the CONTEXT lines PL/pgSQL adds: the caller needs the first line only.
    if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (state == "LL404") return NotFound(text);
    if (state == "LL412") return FailedPrecondition(text);
    if (state == "57014") {
      return {ErrorKind::kUnavailable, std::string(operation) + ": the database took too long"};
    }
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pg::PoolExhausted*>(&e) != nullptr) {
    spdlog::warn("{}: database unavailable: {}", operation, e.what());
    return {ErrorKind::kUnavailable, std::string(operation) + ": the database is unavailable"};
  }
  spdlog::error("{} failed: {}", operation, e.what());
  return {ErrorKind::kInternal, std::string(operation) + ": internal error"};
}

}  // namespace labelloop::labeling::storage
