#include "common/migrate/migrate.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <set>
#include <stdexcept>

namespace labelloop::migrate {
namespace {

// A stable 63-bit key per schema so different services never wait on each other.
int64_t LockKey(const std::string& schema) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (char c : "labelloop.migrate." + schema) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h & 0x7fffffffffffffffULL);
}

}  // namespace

Result Apply(pg::Pool& pool, const std::string& schema, const std::vector<Migration>& migrations) {
  std::vector<Migration> sorted = migrations;
  std::sort(sorted.begin(), sorted.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].version == sorted[i - 1].version) {
      throw std::runtime_error("two migrations share version " + std::to_string(sorted[i].version));
    }
  }
  return pool.Run([&](pqxx::connection& conn) {
    Result result;
    pqxx::work tx(conn);
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", LockKey(schema));
    const std::string q = tx.quote_name(schema);
    tx.exec("CREATE SCHEMA IF NOT EXISTS " + q);
    tx.exec("CREATE TABLE IF NOT EXISTS " + q +
            ".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())");
    std::set<int> applied;
    for (const auto& row : tx.exec("SELECT version FROM " + q + ".schema_migrations")) {
      applied.insert(row[0].as<int>());
    }
    tx.exec("SET LOCAL search_path TO " + q + ", public");
    for (const auto& m : sorted) {
      if (applied.count(m.version) != 0) continue;
      try {
        tx.exec(m.sql);
      } catch (const pqxx::sql_error& e) {
        throw std::runtime_error("migration " + schema + "/" + m.name + " failed: " + e.what());
      }
      tx.exec_params("INSERT INTO " + q + ".schema_migrations (version, name) VALUES ($1, $2)",
                     m.version, m.name);
      ++result.applied_now;
      spdlog::info("applied migration {}/{}", schema, m.name);
    }
    result.schema_version =
        tx.exec("SELECT coalesce(max(version), 0) FROM " + q + ".schema_migrations")[0][0]
            .as<int>();
    tx.commit();
    return result;
  });
}

int CurrentVersion(pg::Pool& pool, const std::string& schema) {
  return pool.Run([&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    auto exists =
        tx.exec_params("SELECT to_regclass($1) IS NOT NULL", schema + ".schema_migrations")[0][0]
            .as<bool>();
    if (!exists) return 0;
    return tx
        .exec("SELECT coalesce(max(version), 0) FROM " + tx.quote_name(schema) +
              ".schema_migrations")[0][0]
        .as<int>();
  });
}

}  // namespace labelloop::migrate
