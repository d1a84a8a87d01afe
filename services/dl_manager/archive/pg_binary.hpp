// PostgreSQL binary values written as JSON the way PostgreSQL's to_json writes them, for
// exports that read binary cursors (values decoded by common/pg/binary_format): timestamps
// and text arrays. Throws pg::binary::FormatError on bytes that are not the expected type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace labelloop::dl_manager::pg_binary {

// Appends a timestamptz (microseconds since 2000-01-01 UTC) as PostgreSQL's to_json does
// under TimeZone UTC: "2024-03-01T00:01:00+00:00", with microseconds when there are any
// (trailing zeros dropped: ".5", ".000123"); "infinity" / "-infinity" for the special
// values.
void AppendJsonTimestamp(std::string* out, int64_t micros);

// A text[] as a JSON array of strings (NULL elements as null): '{}' and
// one-dimensional arrays; several dimensions become nested arrays, as in to_json.
void AppendJsonTextArray(std::string* out, std::string_view field);

}  // namespace labelloop::dl_manager::pg_binary
