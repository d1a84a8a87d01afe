// Small helpers shared by the labeling storage files: array parameters, JSON-encoded
// array results, and turning libpqxx exceptions into Error values at the boundary.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/pg/pool.hpp"
#include "services/labeling/domain/outcome.hpp"

namespace labelloop::labeling::storage {

// A PostgreSQL array literal for text[] parameters: {"a","b \"c\""}.
std::string TextArray(const std::vector<std::string>& values);
// A PostgreSQL array literal for bigint[] parameters: {1,2,3}.
std::string IntArray(const std::vector<int64_t>& values);
// Parses a JSON array of strings (what array_to_json(text[]) gives); NULL gives {}.
std::vector<std::string> JsonStrings(const pqxx::field& field);

// Maps an exception thrown by pqxx or the pool to an Error: SQLSTATE LL404 → not
// found, LL412 → failed precondition (the message raised by the SQL), lost
// connections and an exhausted pool → unavailable, anything else → internal (logged).
Error ErrorFrom(const std::exception& e, const char* operation);

// Runs fn(connection) on the pool; any exception becomes an Error.
template <typename T, typename Fn>
Outcome<T> Guarded(pg::Pool& pool, const char* operation, Fn&& fn) {
  try {
    return pool.Run([&](pqxx::connection& c) -> Outcome<T> { return fn(c); });
  } catch (const std::exception& e) {
    return ErrorFrom(e, operation);
  }
}

}  // namespace labelloop::labeling::storage
