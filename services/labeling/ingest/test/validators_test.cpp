#include "services/labeling/ingest/validators.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace labelloop::labeling::ingest {
namespace {

const char* kFull = R"({
  "image": {"formats": ["png"], "min_width": 8, "max_width": 100, "min_height": 8, "max_height": 50},
  "features": {"count": 3, "min": -1, "max": 1},
  "text": {"min_length": 2, "max_length": 10},
  "labels": {"required": true, "max_count": 2},
  "label_fields": {
    "confidence": {"type": "number", "required": true, "min": 0, "max": 1},
    "source": {"type": "string", "one_of": ["camera", "manual"]},
    "verified": {"type": "boolean"},
    "count": {"type": "integer", "min": 0},
    "tags": {"type": "string_array"}}
})";

TEST(CheckValidatorConfig, AcceptsTheDocumentedFormat) {
  EXPECT_EQ(CheckValidatorConfig(kFull), "");
  EXPECT_EQ(CheckValidatorConfig("{}"), "");
  EXPECT_EQ(CheckValidatorConfig(""), "");
}

TEST(CheckValidatorConfig, NamesTheProblem) {
  EXPECT_EQ(CheckValidatorConfig("{"), "validators: not valid JSON");
  EXPECT_EQ(CheckValidatorConfig("[]"), "validators: must be a JSON object");
  EXPECT_NE(CheckValidatorConfig(R"({"imgae": {}})").find("unknown key 'imgae'"),
            std::string::npos);
  EXPECT_NE(CheckValidatorConfig(R"({"image": {"formats": ["gif"]}})").find("'gif'"),
            std::string::npos);
  EXPECT_EQ(CheckValidatorConfig(R"({"image": {"min_width": -1}})"),
            "image.min_width: must be a non-negative integer");
  EXPECT_EQ(CheckValidatorConfig(R"({"features": {"count": 0}})"),
            "features.count: must be an integer between 1 and 1000000");
  EXPECT_EQ(CheckValidatorConfig(R"({"features": {"min": 2, "max": 1}})"),
            "features: min is larger than max");
  EXPECT_NE(CheckValidatorConfig(R"({"label_fields": {"x": {"type": "date"}}})")
                .find("label_fields.x.type: 'date'"),
            std::string::npos);
  EXPECT_EQ(CheckValidatorConfig(R"({"label_fields": {"x": {"type": "string", "min": 1}}})"),
            "label_fields.x: min/max apply to number and integer fields only");
  EXPECT_EQ(CheckValidatorConfig(R"({"labels": {"required": "yes"}})"),
            "labels.required: must be true or false");
}

TEST(Validators, ChecksImagesFeaturesTextAndLabels) {
  Validators v;
  ASSERT_EQ(ParseValidators(kFull, &v), "");
  EXPECT_EQ(CheckImage(v, "png", 50, 20), "");
  EXPECT_NE(CheckImage(v, "jpeg", 50, 20).find("image format jpeg is not allowed"),
            std::string::npos);
  EXPECT_NE(CheckImage(v, "png", 4, 20).find("narrower than min_width 8"), std::string::npos);
  EXPECT_NE(CheckImage(v, "png", 50, 60).find("higher than max_height 50"), std::string::npos);
  std::vector<float> ok{0.5f, -1.0f, 1.0f}, few{0.5f}, far{0.5f, 2.0f, 0.0f};
  EXPECT_EQ(CheckFeatures(v, ok), "");
  EXPECT_EQ(CheckFeatures(v, few), "1 features, the project's validators require 3");
  EXPECT_EQ(CheckFeatures(v, far), "feature 1 = 2 is outside [-1, 1]");
  EXPECT_NE(CheckText(v, "a").find("shorter than min_length 2"), std::string::npos);
  EXPECT_EQ(CheckLabelCount(v, 0), "labels are required by the project's validators");
  EXPECT_EQ(CheckLabelCount(v, 3), "3 labels, at most 2 allowed");
}

TEST(Validators, ChecksLabelFields) {
  Validators v;
  ASSERT_EQ(ParseValidators(kFull, &v), "");
  using nlohmann::json;
  EXPECT_EQ(CheckLabelFields(v, json::parse(R"({"confidence": 0.5, "source": "camera",
      "verified": true, "count": 3, "tags": ["a"]})")),
            "");
  EXPECT_EQ(CheckLabelFields(v, json()), "label field 'confidence' is required");
  EXPECT_EQ(CheckLabelFields(v, json::parse(R"({"confidence": "high"})")),
            "label field 'confidence' must be a number");
  EXPECT_EQ(CheckLabelFields(v, json::parse(R"({"confidence": 1.5})")),
            "label field 'confidence' = 1.5 is outside [0, 1]");
  EXPECT_EQ(CheckLabelFields(v, json::parse(R"({"confidence": 1, "count": 1.5})")),
            "label field 'count' must be an integer");
  EXPECT_EQ(CheckLabelFields(v, json::parse(R"({"confidence": 1, "source": "web"})")),
            "label field 'source' = 'web' is not one of the allowed values");
  EXPECT_EQ(CheckLabelFields(v, json::parse(R"({"confidence": 1, "extra": 1})")),
            "label field 'extra' is not declared in the project's validators");
  EXPECT_EQ(CheckLabelFields(v, json::parse(R"({"confidence": 1, "tags": [1]})")),
            "label field 'tags' must be an array of strings");
}

}  // namespace
}  // namespace labelloop::labeling::ingest
