#include "services/labeling/domain/schema.hpp"

#include <gtest/gtest.h>

namespace labelloop::labeling {
namespace {

TEST(Schema, AcceptsAValidSchemaAndNamesTheFieldOfEachMistake) {
  EXPECT_EQ(CheckSchema("single", {"cat", "dog"}), "");
  EXPECT_EQ(CheckSchema("multi", {"a"}), "");
  EXPECT_EQ(CheckSchema("pick", {"a"}), "schema.kind: must be 'single' or 'multi' (got 'pick')");
  EXPECT_EQ(CheckSchema("single", {}), "schema.classes: at least one class is required");
  EXPECT_EQ(CheckSchema("single", {"a", ""}), "schema.classes[1]: must not be empty");
  EXPECT_EQ(CheckSchema("single", {"a", "b", "a"}), "schema.classes: class 'a' is listed twice");
  EXPECT_EQ(CheckSchema("single", {std::string(201, 'x')}),
            "schema.classes[0]: at most 200 characters");
}

TEST(Schema, ProjectFields) {
  EXPECT_EQ(CheckProjectName(""), "name: must not be empty");
  EXPECT_EQ(CheckProjectName("Birds"), "");
  EXPECT_EQ(CheckDataKind("image"), "");
  EXPECT_EQ(CheckDataKind("video"), "data_kind: must be one of tabular, text, image (got 'video')");
  EXPECT_EQ(CheckJudgementsPerItem(0), "judgements_per_item: must be between 1 and 50 (got 0)");
  EXPECT_EQ(CheckJudgementsPerItem(3), "");
  EXPECT_EQ(CheckJsonObject("validators_json", "{\"a\":1}"), "");
  EXPECT_EQ(CheckJsonObject("validators_json", "[1]"), "validators_json: must be a JSON object");
  EXPECT_EQ(CheckJsonObject("validators_json", "{"), "validators_json: not valid JSON");
}

TEST(Schema, SettingsKeysOtherServicesReadAreTypeChecked) {
  EXPECT_EQ(CheckSettings("{}"), "");
  EXPECT_EQ(CheckSettings(R"({"strategy":"entropy","retrain_every":100,"x":[1]})"), "");
  EXPECT_NE(CheckSettings(R"({"strategy":"guess"})").find("settings_json.strategy"),
            std::string::npos);
  EXPECT_EQ(CheckSettings(R"({"retrain_every":0})"),
            "settings_json.retrain_every: must be a positive integer");
  EXPECT_EQ(CheckSettings(R"({"retrain_every":"10"})"),
            "settings_json.retrain_every: must be a positive integer");
}

TEST(Schema, RemovedClassesAreTheOnesNoLongerListed) {
  EXPECT_TRUE(RemovedClasses({"a", "b"}, {"a", "b", "c"}).empty());
  EXPECT_EQ(RemovedClasses({"a", "b", "c"}, {"a", "B", "c"}), std::vector<std::string>{"b"});
  EXPECT_EQ(RemovedClasses({"a", "b"}, {"c"}), (std::vector<std::string>{"a", "b"}));
}

TEST(Schema, ClassRemovalRefusalNamesClassAndCount) {
  EXPECT_EQ(ClassRemovalRefusal({}), "");
  EXPECT_EQ(ClassRemovalRefusal({{"cat", 0}}), "");
  EXPECT_EQ(ClassRemovalRefusal({{"cat", 3}}),
            "schema.classes: class 'cat' is used by 3 labels and cannot be renamed or dropped "
            "(classes may only be added while in use)");
  EXPECT_EQ(ClassRemovalRefusal({{"cat", 1}, {"dog", 2}}),
            "schema.classes: class 'cat' is used by 1 label; class 'dog' is used by 2 labels and "
            "cannot be renamed or dropped (classes may only be added while in use)");
}

TEST(Schema, LabelsAreCheckedAgainstTheSchema) {
  LabelSchema single{LabelKind::kSingle, {"cat", "dog", "bird"}};
  LabelSchema multi{LabelKind::kMulti, {"cat", "dog", "bird"}};
  auto ok = CheckLabel(single, {"dog"});
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.classes, std::vector<std::string>{"dog"});
  EXPECT_EQ(CheckLabel(single, {"dog", "cat"}).error,
            "classes: this project is single-choice: give exactly one class (got 2)");
  EXPECT_EQ(CheckLabel(single, {}).error, "classes: at least one class is required");
  EXPECT_EQ(CheckLabel(single, {"dgo"}).error,
            "classes: unknown class 'dgo' (the project's classes: cat, dog, bird)");
  auto set = CheckLabel(multi, {"bird", "cat"});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set.classes, (std::vector<std::string>{"cat", "bird"}));  // schema order
  EXPECT_EQ(CheckLabel(multi, {"cat", "cat"}).error, "classes: class 'cat' is given twice");
}

}  // namespace
}  // namespace labelloop::labeling
