// Allocation-free JSON string writing for hot paths (log lines, exported rows, ingested
// rows) where building an nlohmann::json value per field would cost too much.
#pragma once

#include <string>
#include <string_view>

namespace labelloop::json {

// Appends text escaped for the inside of a JSON string (no surrounding quotes).
void AppendJsonEscaped(std::string* out, std::string_view text);

// Appends text as a quoted JSON string literal.
void AppendJsonString(std::string* out, std::string_view text);

}  // namespace labelloop::json
