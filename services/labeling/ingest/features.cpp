#include "services/labeling/ingest/features.hpp"

#include <cmath>
#include <memory>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace labelloop::labeling::ingest {
namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

uint64_t Fnv(uint64_t h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= kFnvPrime;
  }
  return h;
}

void AddHashed(uint64_t h, int dim, float* v) {
  // Final mix so that similar prefixes spread over the buckets.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  const auto bucket = static_cast<int>(h % static_cast<uint64_t>(dim));
  v[bucket] += (h >> 63) != 0U ? -1.0f : 1.0f;
}

bool WordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

}  // namespace

void TextFeatures(std::string_view text, int dim, std::vector<float>* out) {
  out->assign(static_cast<size_t>(dim), 0.0f);
  float* v = out->data();
  // Normalised text: words lower-cased, separated by single spaces, padded with spaces.
  std::string norm;
  norm.reserve(text.size() + 2);
  norm.push_back(' ');
  std::vector<std::pair<size_t, size_t>> words;  // [start, end) in norm
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !WordByte(static_cast<unsigned char>(text[i]))) ++i;
    if (i == text.size()) break;
    const size_t start = norm.size();
    while (i < text.size() && WordByte(static_cast<unsigned char>(text[i]))) {
      char c = text[i++];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      norm.push_back(c);
    }
    words.emplace_back(start, norm.size());
    norm.push_back(' ');
  }
  if (norm.size() == 1) norm.push_back(' ');
  const std::string_view nv(norm);
  // Distinct seeds keep unigrams, bigrams and 3-grams apart.
  for (size_t w = 0; w < words.size(); ++w) {
    const auto word = nv.substr(words[w].first, words[w].second - words[w].first);
    AddHashed(Fnv(Fnv(kFnvOffset, "w1:"), word), dim, v);
    if (w + 1 < words.size()) {
      const auto pair = nv.substr(words[w].first, words[w + 1].second - words[w].first);
      AddHashed(Fnv(Fnv(kFnvOffset, "w2:"), pair), dim, v);
    }
  }
  for (size_t k = 0; k + 3 <= nv.size(); ++k) {
    AddHashed(Fnv(Fnv(kFnvOffset, "c3:"), nv.substr(k, 3)), dim, v);
  }
  double sum = 0;
  for (float x : *out) sum += static_cast<double>(x) * x;
  if (sum > 0) {
    const auto inv = static_cast<float>(1.0 / std::sqrt(sum));
    for (float& x : *out) x *= inv;
  }
}

int ImageFeatureDim(const ImageFeatureSpec& spec) {
  return spec.grid * spec.grid * (spec.rgb ? 3 : 1) + 3 * spec.histogram_bins;
}

std::string ProbeImage(std::string_view bytes, DecodedImageInfo* info) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 8 && bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) {
    info->format = "png";
  } else if (bytes.size() >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    info->format = "jpeg";
  } else {
    return "not a PNG or JPEG image";
  }
  if (bytes.size() > INT32_MAX) return "image too large";
  int w = 0, h = 0, comp = 0;
  if (stbi_info_from_memory(data, static_cast<int>(bytes.size()), &w, &h, &comp) == 0) {
    return "unreadable " + info->format + " image: " + stbi_failure_reason();
  }
  info->width = w;
  info->height = h;
  return "";
}

std::string ImageFeatures(std::string_view bytes, const ImageFeatureSpec& spec,
                          std::vector<float>* out) {
  int w = 0, h = 0, comp = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const unsigned char*>(bytes.data()),
                            static_cast<int>(bytes.size()), &w, &h, &comp, 3),
      stbi_image_free);
  if (!pixels || w <= 0 || h <= 0) {
    return std::string("unreadable image: ") + stbi_failure_reason();
  }
  const int g = spec.grid;
  const int channels = spec.rgb ? 3 : 1;
  out->assign(static_cast<size_t>(ImageFeatureDim(spec)), 0.0f);
  float* grid = out->data();
  float* hist = grid + static_cast<ptrdiff_t>(g) * g * channels;
  const unsigned char* px = pixels.get();
  // Each cell averages the pixels it covers (at least one, for images smaller than the grid).
  for (int cy = 0; cy < g; ++cy) {
    const int y0 = static_cast<int>(static_cast<int64_t>(cy) * h / g);
    const int y1 = std::max(y0 + 1, static_cast<int>(static_cast<int64_t>(cy + 1) * h / g));
    for (int cx = 0; cx < g; ++cx) {
      const int x0 = static_cast<int>(static_cast<int64_t>(cx) * w / g);
      const int x1 = std::max(x0 + 1, static_cast<int>(static_cast<int64_t>(cx + 1) * w / g));
      double sum[3] = {0, 0, 0};
      for (int y = y0; y < y1; ++y) {
        const unsigned char* row = px + (static_cast<size_t>(y) * w + x0) * 3;
        for (int x = x0; x < x1; ++x, row += 3) {
          sum[0] += row[0];
          sum[1] += row[1];
          sum[2] += row[2];
        }
      }
      const double n = static_cast<double>(y1 - y0) * (x1 - x0) * 255.0;
      float* cell = grid + (static_cast<ptrdiff_t>(cy) * g + cx) * channels;
      if (spec.rgb) {
        for (int c = 0; c < 3; ++c) cell[c] = static_cast<float>(sum[c] / n);
      } else {
        cell[0] = static_cast<float>((0.299 * sum[0] + 0.587 * sum[1] + 0.114 * sum[2]) / n);
      }
    }
  }
  const int bins = spec.histogram_bins;
  const size_t count = static_cast<size_t>(w) * static_cast<size_t>(h);
  std::vector<uint64_t> counts(static_cast<size_t>(3 * bins), 0);
  for (size_t i = 0; i < count; ++i) {
    for (int c = 0; c < 3; ++c) {
      ++counts[static_cast<size_t>(c * bins + px[i * 3 + static_cast<size_t>(c)] * bins / 256)];
    }
  }
  for (size_t i = 0; i < counts.size(); ++i) {
    hist[i] = static_cast<float>(static_cast<double>(counts[i]) / static_cast<double>(count));
  }
  return "";
}

}  // namespace labelloop::labeling::ingest
