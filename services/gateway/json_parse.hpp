// JSON text → protobuf message (proto3 JSON mapping) straight from reflection, for the
// HTTP/JSON API. protobuf 3.21's JsonStringToMessage resolves the message's type into
// google.protobuf.Type descriptions on every call (~16 µs for a small request, more than
// the rest of the HTTP request handling). The fast path here takes the forms clients send:
// field names as lowerCamel or as in the .proto, int64 as a string or a number, enums by
// name or number, bytes as base64, RFC 3339 timestamps ending in Z, nested messages,
// repeated fields and maps. Whatever it is not sure of (null, unknown or repeated names,
// out-of-range or inexact numbers, other well-known types, non-standard JSON, ...) goes to
// protobuf's parser, so what is accepted, the result and the error messages stay protobuf's.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

namespace labelloop::gateway {

// Parses `json` (blank text reads as {}) into *message; "" on success, else protobuf's
// message saying what is wrong.
std::string JsonToMessage(std::string_view json, google::protobuf::Message* message);

// The fast path alone: true when it parsed `json` into *message (cleared first); false
// when protobuf's parser has to decide (*message is then unspecified).
bool FastJsonToMessage(std::string_view json, google::protobuf::Message* message);

}  // namespace labelloop::gateway
