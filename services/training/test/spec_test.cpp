#include "services/training/spec.hpp"

#include <gtest/gtest.h>

namespace labelloop::training {
namespace {

TEST(Spec, DefaultsForEveryField) {
  auto r = ResolveSpec({});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.spec.model_type, ModelKind::kSoftmax);
  EXPECT_GT(r.spec.epochs, 0);
  EXPECT_TRUE(r.spec.hidden_units.empty());
  PartialSpec mlp;
  mlp.model_type = ModelKind::kMlp;
  EXPECT_EQ(ResolveSpec(mlp).spec.hidden_units, std::vector<int>{64});
}

TEST(Spec, BadFieldsAreNamed) {
  auto expect_error = [](PartialSpec p, const std::string& field) {
    auto r = ResolveSpec(p);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error.rfind("spec." + field + ":", 0), 0u) << r.error;
  };
  PartialSpec p;
  p.epochs = 0;
  expect_error(p, "epochs");
  p = {};
  p.batch_size = -1;
  expect_error(p, "batch_size");
  p = {};
  p.learning_rate = 0;
  expect_error(p, "learning_rate");
  p = {};
  p.l2 = -0.1;
  expect_error(p, "l2");
  p = {};
  p.validation_fraction = 0.95;
  expect_error(p, "validation_fraction");
  p = {};
  p.hidden_units = {8};
  expect_error(p, "hidden_units");  // softmax has no hidden layer
  p.model_type = ModelKind::kMlp;
  p.hidden_units = {8, 8, 8};
  expect_error(p, "hidden_units");
  p.hidden_units = {8, 0};
  expect_error(p, "hidden_units[1]");
  p = {};
  p.early_stopping_patience = -2;
  expect_error(p, "early_stopping_patience");
}

TEST(Spec, JsonRoundTrip) {
  PartialSpec p;
  p.model_type = ModelKind::kMlp;
  p.hidden_units = {32, 16};
  p.class_weighting = Weighting::kBalanced;
  p.seed = 7;
  auto r = ResolveSpec(p);
  auto back = SpecFromJson(SpecToJson(r.spec));
  ASSERT_TRUE(back.ok()) << back.error;
  EXPECT_EQ(SpecToJson(back.spec), SpecToJson(r.spec));
  EXPECT_FALSE(SpecFromJson({{"epochs", "x"}}).ok());
  EXPECT_EQ(SpecFromJson({{"bogus", 1}}).error, "spec.bogus: unknown field");
}

}  // namespace
}  // namespace labelloop::training
