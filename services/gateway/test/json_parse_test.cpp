#include "services/gateway/json_parse.hpp"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "labelloop/v1/dl_manager.pb.h"
#include "labelloop/v1/labeling.pb.h"
#include "labelloop/v1/labeling_ingest.pb.h"
#include "services/gateway/json_print.hpp"
#include "services/gateway/proto_util.hpp"
#include "services/gateway/test/message_filler.hpp"

namespace labelloop::gateway {
namespace {
namespace pb = google::protobuf;
using pb::util::MessageDifferencer;
using test_messages::AllTypes;
using test_messages::Filler;

// protobuf's own reading of `json` into a fresh message of `type` (null when it refuses);
// a blank body reads as {} (HTTP requests without a body).
std::unique_ptr<pb::Message> ProtobufParse(const pb::Descriptor* type, const std::string& json) {
  auto m = NewMessage(type);
  const bool blank = json.find_first_not_of(" \t\r\n") == std::string::npos;
  if (!pb::util::JsonStringToMessage(blank ? "{}" : json, m.get()).ok()) return nullptr;
  return m;
}

// Equal messages (NaN equal to NaN, as the same bytes).
bool Same(const pb::Message& a, const pb::Message& b) {
  return MessageDifferencer::Equals(a, b) || a.SerializeAsString() == b.SerializeAsString();
}

// Our parser agrees with protobuf's on `json`: both accept it as the same message, or
// both refuse it (with protobuf's message). Returns whether the fast path took it.
bool AgreesWithProtobuf(const pb::Descriptor* type, const std::string& json) {
  const auto expected = ProtobufParse(type, json);
  auto ours = NewMessage(type);
  const std::string error = JsonToMessage(json, ours.get());
  EXPECT_EQ(error.empty(), expected != nullptr) << type->full_name() << ": " << json << "\n"
                                                << error;
  if (expected != nullptr && error.empty()) {
    EXPECT_TRUE(Same(*ours, *expected))
        << type->full_name() << ": " << json << "\nours:     " << ours->ShortDebugString()
        << "\nprotobuf: " << expected->ShortDebugString();
  }
  auto fast = NewMessage(type);
  const bool took = FastJsonToMessage(json, fast.get());
  if (took) {
    EXPECT_NE(expected, nullptr) << "fast path took what protobuf refuses: " << json;
    if (expected != nullptr) {
      EXPECT_TRUE(Same(*fast, *expected)) << json;
    }
  }
  return took;
}

TEST(JsonParse, ReadsWhatProtobufPrintsForEveryApiMessage) {
  const auto types = AllTypes();
  ASSERT_GT(types.size(), 50u);
  Filler filler(11);
  for (const auto* type : types) {
    for (int variant = 0; variant < 12; ++variant) {
      auto m = NewMessage(type);
      if (variant > 0) filler.Fill(m.get(), 0);
      pb::util::JsonPrintOptions opts;
      opts.always_print_primitive_fields = variant % 2 == 0;
      opts.preserve_proto_field_names = variant % 3 == 0;
      opts.always_print_enums_as_ints = variant % 4 == 0;
      std::string printed;
      ASSERT_TRUE(pb::util::MessageToJsonString(*m, &printed, opts).ok());
      for (const std::string& json : {printed, MessageToJson(*m)}) {
        // The fast path takes every form protobuf (or our printer) prints.
        EXPECT_TRUE(AgreesWithProtobuf(type, json)) << type->full_name() << ": " << json;
        auto back = NewMessage(type);
        ASSERT_EQ(JsonToMessage(json, back.get()), "") << json;
        EXPECT_TRUE(MessageDifferencer::Equals(*m, *back)) << type->full_name() << ": " << json;
      }
    }
  }
}

TEST(JsonParse, AgreesWithProtobufOnEdgeCases) {
  const auto* sub = v1::SubmitLabelRequest::descriptor();
  const auto* up = v1::UploadRequest::descriptor();
  const auto* items = v1::ListItemsRequest::descriptor();
  const auto* dl = v1::Download::descriptor();
  const auto* create = v1::CreateProjectRequest::descriptor();
  const std::vector<std::pair<const pb::Descriptor*, std::string>> cases = {
      // Names: lowerCamel, .proto names, unknown ones, repeated ones.
      {sub, R"({"itemId":"5","leaseToken":"t","classes":["a","b"],"secondsSpent":1.5})"},
      {sub, R"({"item_id":5,"lease_token":"t","seconds_spent":2})"},
      {sub, R"({"itemID":5})"},
      {sub, R"({"item_id":5,"itemId":6})"},
      {sub, R"({"itemId":5,"itemId":6})"},
      {sub, R"({"nope":1})"},
      // Integers: numbers, strings, out of range, fractions, exponents, spaces, signs.
      {sub, R"({"itemId":-9223372036854775808})"},
      {sub, R"({"itemId":"9223372036854775807"})"},
      {sub, R"({"itemId":9223372036854775808})"},
      {sub, R"({"itemId":"9223372036854775808"})"},
      {sub, R"({"itemId":1.0})"},
      {sub, R"({"itemId":1.5})"},
      {sub, R"({"itemId":1e3})"},
      {sub, R"({"itemId":" 5"})"},
      {sub, R"({"itemId":"+5"})"},
      {sub, R"({"itemId":"05"})"},
      {sub, R"({"itemId":-0})"},
      {sub, R"({"itemId":"x"})"},
      {sub, R"({"itemId":true})"},
      {items, R"({"pageSize":2147483648})"},
      {items, R"({"pageSize":"-2147483648"})"},
      // Doubles.
      {sub, R"({"secondsSpent":"NaN"})"},
      {sub, R"({"secondsSpent":"Infinity"})"},
      {sub, R"({"secondsSpent":"1.25"})"},
      {sub, R"({"secondsSpent":1e400})"},
      {sub, R"({"secondsSpent":-0.0})"},
      {sub, R"({"secondsSpent":12345678901234567890})"},
      {sub, R"({"secondsSpent":9007199254740993})"},
      {sub, R"({"secondsSpent":.5})"},
      {sub, R"({"secondsSpent":1.})"},
      // null, strings, escapes, broken JSON.
      {sub, R"({"leaseToken":null})"},
      {sub, R"({"classes":null})"},
      {sub, R"({"classes":["a",null]})"},
      {sub, R"({"leaseToken":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00"})"},
      {sub, R"({"leaseToken":"\ud83d"})"},
      {sub, R"({"leaseToken":"\x41"})"},
      {sub, "{\"leaseToken\":\"caf\xc3\xa9\"}"},
      {sub, "{\"leaseToken\":\"bad \xff\"}"},
      {sub, "{\"leaseToken\":\"tab\tinside\"}"},
      {sub, R"({"leaseToken":'single'})"},
      {sub, R"({leaseToken:"unquoted"})"},
      {sub, R"({"classes":["a",]})"},
      {sub, R"({"itemId":5,})"},
      {sub, R"({"itemId":5} x)"},
      {sub, R"([])"},
      {sub, R"("x")"},
      {sub, R"({"classes":"a"})"},
      {sub, ""},
      {sub, "  \n"},
      {sub, "{}"},
      {sub, "{"},
      // Enums, oneofs, bytes, nested messages.
      {up,
       R"({"header":{"projectId":"1","format":"UPLOAD_FORMAT_CSV","mapping":{"externalIdColumn":"id","featureColumns":["x1","x2"]}}})"},
      {up, R"({"header":{"format":1}})"},
      {up, R"({"header":{"format":99}})"},
      {up, R"({"header":{"format":"1"}})"},
      {up, R"({"header":{"format":"NO_SUCH_FORMAT"}})"},
      {up, R"({"header":{"format":"upload_format_csv"}})"},
      {up, R"({"header":{},"chunk":"AA=="})"},
      {up, R"({"chunk":"aGVsbG8="})"},
      {up, R"({"chunk":"aGVsbG8"})"},
      {up, R"({"chunk":"aGVsbA=="})"},
      {up, R"({"chunk":"aGVsbB=="})"},
      {up, R"({"chunk":"-_8="})"},
      {up, R"({"chunk":"+/8="})"},
      {up, R"({"chunk":"a b"})"},
      {up, R"({"chunk":""})"},
      {up, R"({"header":{"mapping":{"nope":1}}})"},
      {up, R"({"header":5})"},
      {create, R"({"name":"n","schema":{}})"},
      {create, R"({"name":"n","schema":null})"},
      // Timestamps.
      {items, R"({"from":"2024-02-29T12:34:56Z"})"},
      {items, R"({"from":"2023-02-29T12:34:56Z"})"},
      {items, R"({"from":"2024-01-01T00:00:00.5Z"})"},
      {items, R"({"from":"2024-01-01T00:00:00.123456789Z"})"},
      {items, R"({"from":"2024-01-01T00:00:00.1234567891Z"})"},
      {items, R"({"from":"0001-01-01T00:00:00Z"})"},
      {items, R"({"from":"1969-12-31T23:59:59.999Z"})"},
      {items, R"({"from":"2024-01-01T00:00:00+01:00"})"},
      {items, R"({"from":"2024-01-01t00:00:00z"})"},
      {items, R"({"from":"2024-01-01T24:00:00Z"})"},
      {items, R"({"from":"2024-01-01"})"},
      {items, R"({"from":{"seconds":5}})"},
      {items, R"({"from":5})"},
      // Maps.
      {dl, R"({"entryCounts":{"a":"1","b":2}})"},
      {dl, R"({"entryCounts":{"a":1,"a":2}})"},
      {dl, R"({"entryCounts":{"a":null}})"},
      {dl, R"({"entryCounts":[]})"},
      {dl, R"({"entry_counts":{}})"},
  };
  int fast = 0;
  for (const auto& [type, json] : cases) fast += AgreesWithProtobuf(type, json) ? 1 : 0;
  EXPECT_GT(fast, 20);  // the common forms do not fall back
}

TEST(JsonParse, ReadsTheProto3Mapping) {
  v1::SubmitLabelRequest m;
  ASSERT_TRUE(FastJsonToMessage(
      R"({"itemId":"42","lease_token":"tok","classes":["a","é"],"secondsSpent":2.5})", &m));
  EXPECT_EQ(m.item_id(), 42);
  EXPECT_EQ(m.lease_token(), "tok");
  ASSERT_EQ(m.classes_size(), 2);
  EXPECT_EQ(m.classes(1), "é");
  EXPECT_EQ(m.seconds_spent(), 2.5);
  v1::ListItemsRequest l;
  ASSERT_TRUE(FastJsonToMessage(R"({"from":"1970-01-02T00:00:01.250Z"})", &l));
  EXPECT_EQ(l.from().seconds(), 86401);
  EXPECT_EQ(l.from().nanos(), 250000000);
  // Unknown names are refused, with protobuf's message.
  EXPECT_NE(JsonToMessage(R"({"itemId":1,"bogus":2})", &m), "");
}

}  // namespace
}  // namespace labelloop::gateway
