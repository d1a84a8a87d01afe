// Feature extraction at ingestion: hashed bag of n-grams for text, a small grid plus a
// colour histogram for images. The vectors are stored as real[] on each item.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace labelloop::labeling::ingest {

// Text: lower-cased ASCII words (bytes >= 0x80 count as letters, so UTF-8 words stay
// whole), hashed word unigrams and bigrams and byte 3-grams of " word word ", each
// hashed (FNV-1a) into `dim` buckets with a hash-derived sign, then L2-normalised.
void TextFeatures(std::string_view text, int dim, std::vector<float>* out);

struct ImageFeatureSpec {
  int grid = 16;           // grid x grid cells, each the mean of its pixels, in [0, 1]
  bool rgb = false;        // 3 values per cell instead of 1 (luma)
  int histogram_bins = 8;  // per channel (R, G, B), each channel's bins sum to 1
};

// Length of the vector ImageFeatures produces.
int ImageFeatureDim(const ImageFeatureSpec& spec);

struct DecodedImageInfo {
  std::string format;  // "png" or "jpeg"
  int width = 0;
  int height = 0;
};

// Reads the format and size from the header without decoding. Returns "" or why not.
std::string ProbeImage(std::string_view bytes, DecodedImageInfo* info);

// Decodes (stb_image) and computes the features. Returns "" or why the image is unreadable.
std::string ImageFeatures(std::string_view bytes, const ImageFeatureSpec& spec,
                          std::vector<float>* out);

}  // namespace labelloop::labeling::ingest
