#include "services/gateway/json_print.hpp"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "labelloop/v1/dl_manager.pb.h"
#include "labelloop/v1/gateway.pb.h"
#include "labelloop/v1/labeling.pb.h"
#include "labelloop/v1/ranking.pb.h"
#include "labelloop/v1/training.pb.h"
#include "services/gateway/proto_util.hpp"
#include "services/gateway/test/message_filler.hpp"

namespace labelloop::gateway {
namespace {
namespace pb = google::protobuf;
using test_messages::AllTypes;
using test_messages::Filler;

std::string ProtobufJson(const pb::Message& m) {
  pb::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  std::string out;
  EXPECT_TRUE(pb::util::MessageToJsonString(m, &out, opts).ok());
  return out;
}

TEST(JsonPrint, SameJsonAsProtobufForEveryApiMessage) {
  const auto types = AllTypes();
  ASSERT_GT(types.size(), 50u);
  Filler filler(7);
  for (const auto* type : types) {
    for (int variant = 0; variant < 12; ++variant) {
      auto m = NewMessage(type);
      if (variant > 0) filler.Fill(m.get(), 0);
      const std::string ours = MessageToJson(*m);
      const auto parsed = nlohmann::json::parse(ours, nullptr, false);
      ASSERT_FALSE(parsed.is_discarded()) << type->full_name() << ": " << ours;
      EXPECT_EQ(parsed, nlohmann::json::parse(ProtobufJson(*m)))
          << type->full_name() << "\nours:     " << ours << "\nprotobuf: " << ProtobufJson(*m);
      // And protobuf reads it back as the same message.
      auto back = NewMessage(type);
      ASSERT_TRUE(pb::util::JsonStringToMessage(ours, back.get()).ok()) << ours;
      EXPECT_TRUE(pb::util::MessageDifferencer::Equals(*m, *back)) << type->full_name();
    }
  }
}

TEST(JsonPrint, PrintsTheProto3Mapping) {
  v1::Project p;
  p.set_id(5);
  p.set_name("a \"b\"\n");
  p.mutable_created_at()->set_seconds(1700000000);
  p.mutable_created_at()->set_nanos(500000000);
  const auto j = nlohmann::json::parse(MessageToJson(p));
  EXPECT_EQ(j["id"], "5");                                // int64 as a string
  EXPECT_EQ(j["name"], "a \"b\"\n");                      // escaped and read back
  EXPECT_EQ(j["judgementsPerItem"], 0);                   // defaults printed
  EXPECT_EQ(j["createdAt"], "2023-11-14T22:13:20.500Z");  // RFC 3339
  EXPECT_FALSE(j.contains("schema"));                     // unset message omitted
  EXPECT_FALSE(j.contains("updatedAt"));
}

}  // namespace
}  // namespace labelloop::gateway
