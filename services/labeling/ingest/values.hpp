// Parsing of the scalar values found in uploads: numbers, timestamps, UTF-8 checks,
// plus the JSON string escaping used for row payloads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/json/json_text.hpp"

namespace labelloop::labeling::ingest {

// A finite float from text (surrounding spaces allowed). False for anything else,
// including empty text, NaN and infinities.
bool ParseFloat(std::string_view text, float* out);

// ISO-8601 / RFC 3339 date or date-time ("2024-05-01", "2024-05-01T12:30:00",
// "2024-05-01 12:30:00.25+02:00", "...Z"; no zone means UTC) or Unix seconds
// ("1714566600", "1714566600.5"). On success *micros is microseconds since the Unix
// epoch; on failure returns false and *error says what is wrong.
bool ParseTimestamp(std::string_view text, int64_t* micros, std::string* error);

// True when text is valid UTF-8 without NUL bytes (PostgreSQL refuses both).
bool IsValidUtf8(std::string_view text);

// Appends text as a JSON string literal (with quotes).
using json::AppendJsonString;

}  // namespace labelloop::labeling::ingest
