#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "services/labeling/ingest/features.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "services/labeling/ingest/test/images.hpp"

namespace labelloop::labeling::ingest {
namespace {

double Norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

TEST(TextFeatures, L2NormalisedDeterministicAndCaseInsensitive) {
  std::vector<float> a, b, c;
  TextFeatures("The quick brown fox jumps", 256, &a);
  TextFeatures("the QUICK brown fox, jumps!", 256, &b);
  TextFeatures("completely unrelated sentence here", 256, &c);
  ASSERT_EQ(a.size(), 256U);
  EXPECT_NEAR(Norm(a), 1.0, 1e-5);
  EXPECT_NEAR(Dot(a, b), 1.0, 1e-5);  // same words, same vector
  EXPECT_LT(Dot(a, c), 0.6);
}

TEST(TextFeatures, WordOrderMattersThroughBigrams) {
  std::vector<float> a, b;
  TextFeatures("dog bites man", 1024, &a);
  TextFeatures("man bites dog", 1024, &b);
  EXPECT_LT(Dot(a, b), 0.999);
  EXPECT_GT(Dot(a, b), 0.2);
}

TEST(TextFeatures, NonAsciiTextAndEmptyText) {
  std::vector<float> v;
  TextFeatures("über straße café", 64, &v);
  EXPECT_NEAR(Norm(v), 1.0, 1e-5);
  TextFeatures("", 64, &v);
  EXPECT_EQ(v.size(), 64U);
}

TEST(ImageFeatures, GridAndHistogramOfAPng) {
  const std::string png = test::Png(64, 32, 200);
  DecodedImageInfo info;
  ASSERT_EQ(ProbeImage(png, &info), "");
  EXPECT_EQ(info.format, "png");
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.height, 32);
  ImageFeatureSpec spec{.grid = 4, .rgb = true, .histogram_bins = 4};
  std::vector<float> v;
  ASSERT_EQ(ImageFeatures(png, spec, &v), "");
  ASSERT_EQ(static_cast<int>(v.size()), ImageFeatureDim(spec));
  ASSERT_EQ(v.size(), 4U * 4 * 3 + 12);
  // Red grows to the right, green downwards, blue constant 200/255.
  EXPECT_LT(v[0], v[3 * 3]);
  EXPECT_LT(v[1], v[(3 * 4) * 3 + 1]);
  EXPECT_NEAR(v[2], 200.0 / 255, 1e-3);
  // Each channel's histogram sums to 1; blue sits in one bin.
  const float* hist = v.data() + 48;
  EXPECT_NEAR(std::accumulate(hist, hist + 4, 0.0), 1.0, 1e-5);
  EXPECT_NEAR(hist[8 + 3], 1.0, 1e-5);
}

TEST(ImageFeatures, GreyJpegAndImagesSmallerThanTheGrid) {
  const std::string jpg = test::Jpeg(5, 3);
  DecodedImageInfo info;
  ASSERT_EQ(ProbeImage(jpg, &info), "");
  EXPECT_EQ(info.format, "jpeg");
  ImageFeatureSpec spec{.grid = 16, .rgb = false, .histogram_bins = 8};
  std::vector<float> v;
  ASSERT_EQ(ImageFeatures(jpg, spec, &v), "");
  EXPECT_EQ(v.size(), 16U * 16 + 24);
  for (float x : v) EXPECT_TRUE(x >= 0 && x <= 1);
}

TEST(ImageFeatures, UnreadableImagesAreRefusedWithAReason) {
  DecodedImageInfo info;
  EXPECT_EQ(ProbeImage("GIF89a....", &info), "not a PNG or JPEG image");
  std::string broken = test::Png(8, 8).substr(0, 40);
  std::vector<float> v;
  const auto probe = ProbeImage(broken, &info);
  const auto decode = ImageFeatures(broken, {}, &v);
  EXPECT_TRUE(!probe.empty() || !decode.empty());
  EXPECT_NE((probe + decode).find("unreadable"), std::string::npos) << probe << decode;
}

}  // namespace
}  // namespace labelloop::labeling::ingest
