#include "common/prediction_chunks/prediction_chunks.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace labelloop::prediction_chunks {
namespace {

TEST(PredictionChunks, PacksLittleEndianRowMajor) {
  ChunkPacker p(2);
  const float a[] = {0.25f, 0.75f};
  const float b[] = {1.0f, 0.0f};
  p.Add(0x0102030405060708LL, a);
  p.Add(0x1112131415161718LL, b);
  ASSERT_EQ(p.rows(), 2u);
  EXPECT_EQ(p.first_item_id(), 0x0102030405060708LL);
  EXPECT_EQ(p.last_item_id(), 0x1112131415161718LL);
  const std::string ids(p.item_ids());
  ASSERT_EQ(ids.size(), 16u);
  const unsigned char want_ids[] = {8,    7,    6,    5,    4,    3,    2,    1,
                                    0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11};
  EXPECT_EQ(std::memcmp(ids.data(), want_ids, 16), 0);
  // 0.25f = 0x3E800000, 0.75f = 0x3F400000, 1.0f = 0x3F800000, 0.0f = 0: low byte first.
  const unsigned char want_probs[] = {0, 0, 0x80, 0x3E, 0, 0, 0x40, 0x3F,
                                      0, 0, 0x80, 0x3F, 0, 0, 0,    0};
  const std::string probs(p.probabilities());
  ASSERT_EQ(probs.size(), 16u);
  EXPECT_EQ(std::memcmp(probs.data(), want_probs, 16), 0);
}

TEST(PredictionChunks, RoundTripsKClasses) {
  for (int k : {1, 2, 3, 10, 17}) {
    ChunkPacker p(k);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t id = 5; id < 105; id += 3) {
      for (int c = 0; c < k; ++c) row[static_cast<size_t>(c)] = static_cast<float>(id * 100 + c);
      p.Add(id, row.data());
    }
    ASSERT_EQ(CheckChunk(1, 0, static_cast<int64_t>(p.rows()), p.item_ids(),
                         p.probabilities().size(), k, std::nullopt),
              "")
        << k;
    std::vector<int64_t> ids(p.rows());
    std::vector<float> probs(p.rows() * static_cast<size_t>(k));
    UnpackItemIds(p.item_ids(), ids.data());
    UnpackProbabilities(p.probabilities(), probs.data());
    for (size_t r = 0; r < ids.size(); ++r) {
      const int64_t id = 5 + 3 * static_cast<int64_t>(r);
      EXPECT_EQ(ids[r], id);
      EXPECT_EQ(ItemIdAt(p.item_ids(), r), id);
      for (int c = 0; c < k; ++c) {
        EXPECT_EQ(probs[r * static_cast<size_t>(k) + static_cast<size_t>(c)],
                  static_cast<float>(id * 100 + c));
      }
    }
  }
}

TEST(PredictionChunks, ChunkBoundaries) {
  // 10 rows, 4 per chunk: chunks of 4, 4 and 2 rows, ids continuing across them.
  ChunkPacker p(1, 4);
  std::vector<std::vector<int64_t>> chunks;
  std::vector<int64_t> firsts, lasts;
  auto flush = [&] {
    std::vector<int64_t> ids(p.rows());
    UnpackItemIds(p.item_ids(), ids.data());
    chunks.push_back(ids);
    firsts.push_back(p.first_item_id());
    lasts.push_back(p.last_item_id());
    p.Clear();
  };
  for (int64_t id = 1; id <= 10; ++id) {
    const float v = 1.0f;
    p.Add(id * 10, &v);
    if (p.full()) flush();
  }
  if (!p.empty()) flush();
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], (std::vector<int64_t>{10, 20, 30, 40}));
  EXPECT_EQ(chunks[1], (std::vector<int64_t>{50, 60, 70, 80}));
  EXPECT_EQ(chunks[2], (std::vector<int64_t>{90, 100}));
  EXPECT_EQ(firsts, (std::vector<int64_t>{10, 50, 90}));
  EXPECT_EQ(lasts, (std::vector<int64_t>{40, 80, 100}));
  // Ids must keep ascending after Clear.
  const float v = 1.0f;
  EXPECT_THROW(p.Add(100, &v), std::invalid_argument);
  EXPECT_NO_THROW(p.Add(101, &v));
}

TEST(PredictionChunks, DefaultChunkHoldsAtMost65536Rows) {
  ChunkPacker p(0);
  for (int64_t id = 0; id < static_cast<int64_t>(kMaxRowsPerChunk); ++id) p.Add(id, nullptr);
  EXPECT_TRUE(p.full());
  EXPECT_THROW(p.Add(kMaxRowsPerChunk, nullptr), std::invalid_argument);
  ChunkPacker big(1, 1'000'000);  // capped
  const float v = 0;
  for (int64_t id = 0; id < static_cast<int64_t>(kMaxRowsPerChunk); ++id) big.Add(id, &v);
  EXPECT_TRUE(big.full());
}

TEST(PredictionChunks, EmptyModelHasNoRows) {
  ChunkPacker p(3);
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.item_ids().size(), 0u);
  EXPECT_EQ(p.probabilities().size(), 0u);
  EXPECT_EQ(CheckChunk(1, 0, 0, "", 0, 3, std::nullopt), "");
}

TEST(PredictionChunks, RejectsLengthsThatDoNotMatch) {
  ChunkPacker p(3);
  const float row[] = {0.2f, 0.3f, 0.5f};
  p.Add(1, row);
  p.Add(2, row);
  const auto ids = p.item_ids();
  EXPECT_EQ(CheckChunk(9, 7, 2, ids, 24, 3, std::nullopt), "");
  // Read with the wrong class count.
  EXPECT_EQ(CheckChunk(9, 7, 2, ids, 24, 4, std::nullopt),
            "model 9, prediction chunk 7: probabilities has 24 bytes, row_count 2 × 4 classes "
            "needs 32");
  EXPECT_NE(CheckChunk(9, 7, 2, ids, 20, 3, std::nullopt).find("probabilities has 20 bytes"),
            std::string::npos);
  EXPECT_EQ(CheckChunk(9, 7, 2, ids.substr(0, 12), 24, 3, std::nullopt),
            "model 9, prediction chunk 7: item_ids has 12 bytes, row_count 2 needs 16");
  EXPECT_NE(CheckChunk(9, 7, 3, ids, 24, 3, std::nullopt), "");
  EXPECT_NE(CheckChunk(9, 7, -1, ids, 24, 3, std::nullopt).find("row_count -1"), std::string::npos);
  EXPECT_NE(CheckChunk(9, 7, 65537, "", 0, 3, std::nullopt).find("row_count 65537"),
            std::string::npos);
}

TEST(PredictionChunks, RejectsIdsOutOfOrder) {
  std::string ids;
  for (int64_t id : {5, 3}) ids.append(reinterpret_cast<const char*>(&id), sizeof id);
  EXPECT_NE(
      CheckChunk(1, 0, 2, ids, 0, 0, std::nullopt).find("item id 3 (row 1) does not come after 5"),
      std::string::npos);
  std::string one;
  const int64_t id = 5;
  one.append(reinterpret_cast<const char*>(&id), sizeof id);
  EXPECT_EQ(CheckChunk(1, 1, 1, one, 0, 0, 4), "");
  EXPECT_NE(CheckChunk(1, 1, 1, one, 0, 0, 5), "");  // the chunk before ended at 5 already
}

}  // namespace
}  // namespace labelloop::prediction_chunks
