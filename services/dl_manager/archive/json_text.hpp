// Small, allocation-free pieces of JSON writing and PostgreSQL text parsing used on
// the per-row hot path of an export (millions of rows): floats in their shortest
// round-trip form, JSON strings, and real[] arrays in PostgreSQL's text form.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/json/json_text.hpp"

namespace labelloop::dl_manager {

// Appends v as a JSON number (shortest form that reads back to the same float);
// NaN and infinities become null, which JSON cannot otherwise express.
void AppendFloat(std::string* out, float v);

// Appends s as a quoted JSON string with the required escapes.
using json::AppendJsonString;

// Parses a PostgreSQL real[] in text form ("{1.5,-2,NaN}") into *out (cleared first).
// NULL elements become NaN. Returns false when the text is not a flat numeric array.
bool ParseFloatArray(std::string_view text, std::vector<float>* out);

}  // namespace labelloop::dl_manager
