// PostgreSQL's binary wire format (what a FETCH with binary results returns) for the
// column types an export reads, decoded without a database so it can be unit-tested:
// int8, bool, real, timestamptz and one-dimensional arrays of text and real. Formats
// timestamps the way PostgreSQL's JSON functions do (ISO 8601, UTC, "+00:00").
//
// Every reader checks the length it is given and throws BinaryFormatError on bytes that
// are not the expected type, so a wrong column type fails the export with a message
// instead of reading past a field.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace labelloop::dl_manager::pg_binary {

class BinaryFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

int64_t Int8(std::string_view field);
int32_t Int4(std::string_view field);
bool Bool(std::string_view field);
float Float4(std::string_view field);
// timestamptz: microseconds since 2000-01-01 00:00:00 UTC; INT64_MAX / INT64_MIN are
// 'infinity' / '-infinity'.
int64_t TimestampMicros(std::string_view field);

// Appends a timestamptz as PostgreSQL's to_json does under TimeZone UTC:
// "2024-03-01T00:01:00+00:00", with microseconds when there are any (trailing zeros
// dropped: ".5", ".000123"); "infinity" / "-infinity" for the special values.
void AppendJsonTimestamp(std::string* out, int64_t micros);

// A text[] as a JSON array of strings (NULL elements as null): '{}' and
// one-dimensional arrays; several dimensions become nested arrays, as in to_json.
void AppendJsonTextArray(std::string* out, std::string_view field);

// A real[] (one dimension, or empty) into *out (cleared first); NULL elements are NaN.
void Float4Array(std::string_view field, std::vector<float>* out);

}  // namespace labelloop::dl_manager::pg_binary
