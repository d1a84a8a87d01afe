// Schema migrations: numbered SQL scripts per service, applied in order inside one
// transaction under a PostgreSQL advisory lock, so replicas starting together apply
// each exactly once. Applied versions are recorded in <schema>.schema_migrations.
#pragma once

#include <string>
#include <vector>

#include "common/pg/pool.hpp"

namespace labelloop::migrate {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

struct Result {
  int schema_version = 0;  // highest version now applied
  int applied_now = 0;     // how many this call applied
};

// Applies the migrations not yet recorded. Each script runs with search_path set to
// `schema`. Throws std::runtime_error naming the failing migration.
Result Apply(pg::Pool& pool, const std::string& schema, const std::vector<Migration>& migrations);

// The highest applied version, or 0 when none.
int CurrentVersion(pg::Pool& pool, const std::string& schema);

}  // namespace labelloop::migrate
