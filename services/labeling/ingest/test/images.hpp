// Test images encoded in memory (stb_image_write; the implementation is compiled in
// exactly one .cpp of each test executable, which defines STB_IMAGE_WRITE_IMPLEMENTATION).
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <string>
#include <vector>

namespace labelloop::labeling::ingest::test {

inline void AppendTo(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

// A w x h RGB image: red rises left to right, green top to bottom, blue is `blue`.
inline std::vector<unsigned char> Pixels(int w, int h, unsigned char blue) {
  std::vector<unsigned char> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      auto* p = &px[static_cast<size_t>((y * w + x) * 3)];
      p[0] = static_cast<unsigned char>(x * 255 / (w > 1 ? w - 1 : 1));
      p[1] = static_cast<unsigned char>(y * 255 / (h > 1 ? h - 1 : 1));
      p[2] = blue;
    }
  }
  return px;
}

inline std::string Png(int w, int h, unsigned char blue = 128) {
  std::string out;
  auto px = Pixels(w, h, blue);
  stbi_write_png_to_func(AppendTo, &out, w, h, 3, px.data(), w * 3);
  return out;
}

inline std::string Jpeg(int w, int h, unsigned char blue = 128) {
  std::string out;
  auto px = Pixels(w, h, blue);
  stbi_write_jpg_to_func(AppendTo, &out, w, h, 3, px.data(), 90);
  return out;
}

}  // namespace labelloop::labeling::ingest::test
