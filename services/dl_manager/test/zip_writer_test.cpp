#include "services/dl_manager/archive/zip_writer.hpp"

#include <gtest/gtest.h>
#include <zip.h>

#include <cstdlib>
#include <filesystem>

#include "services/dl_manager/archive/sha256.hpp"

namespace labelloop::dl_manager {
namespace {

// Emits `pieces` records of JSON, one piece per Next() call.
class CountingProducer : public EntryProducer {
 public:
  explicit CountingProducer(int pieces) : pieces_(pieces) {}
  bool Next(std::string* out) override {
    if (next_ == 0) out->push_back('[');
    out->append(next_ == 0 ? "\n" : ",\n");
    out->append("{\"i\":" + std::to_string(next_) + ",\"pad\":\"" + std::string(100, 'x') + "\"}");
    ++next_;
    if (next_ == pieces_) {
      out->append("\n]\n");
      return false;
    }
    return true;
  }
  int64_t records() const override { return next_; }
  static std::string Expected(int pieces) {
    std::string s;
    CountingProducer p(pieces);
    while (p.Next(&s)) {
    }
    return s;
  }

 private:
  int pieces_;
  int next_ = 0;
};

class ThrowingProducer : public EntryProducer {
 public:
  bool Next(std::string* out) override {
    out->append("partial");
    throw std::runtime_error("cursor broke");
  }
};

std::string ReadEntry(zip_t* z, const char* name) {
  zip_file_t* f = zip_fopen(z, name, 0);
  if (f == nullptr) return "<missing>";
  std::string out;
  char buf[65536];
  zip_int64_t n;
  while ((n = zip_fread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  zip_fclose(f);
  return out;
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) /
          (name + "-" + std::to_string(::getpid()) + ".zip"))
      .string();
}

TEST(ZipWriter, StreamsEntriesAndRecordsTheirChecksums) {
  const std::string path = TempPath("stream");
  {
    ZipWriter zip(path, 1);
    zip.Add("big.json", std::make_unique<CountingProducer>(50000));
    zip.Add("dir/readme.md", std::make_unique<StringProducer>("hello\n"));
    zip.Add("empty.txt", std::make_unique<StringProducer>(""));
    zip.Close();
    ASSERT_EQ(zip.entries().size(), 3u);
    const std::string expected = CountingProducer::Expected(50000);
    const EntryStats* big = zip.Find("big.json");
    ASSERT_NE(big, nullptr);
    EXPECT_EQ(big->bytes, expected.size());
    EXPECT_EQ(big->records, 50000);
    EXPECT_EQ(big->sha256, Sha256::Of(expected));
    EXPECT_EQ(zip.Find("dir/readme.md")->sha256, Sha256::Of("hello\n"));
    EXPECT_EQ(zip.Find("empty.txt")->bytes, 0u);
  }
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  ASSERT_NE(z, nullptr) << "libzip error " << err;
  EXPECT_EQ(zip_get_num_entries(z, 0), 3);
  EXPECT_EQ(ReadEntry(z, "big.json"), CountingProducer::Expected(50000));
  EXPECT_EQ(ReadEntry(z, "dir/readme.md"), "hello\n");
  zip_stat_t st;
  ASSERT_EQ(zip_stat(z, "big.json", 0, &st), 0);
  EXPECT_EQ(st.comp_method, ZIP_CM_DEFLATE);
  EXPECT_LT(st.comp_size, st.size / 5);  // the padding compresses
  zip_close(z);
  if (std::system("command -v unzip > /dev/null") == 0) {
    EXPECT_EQ(std::system(("unzip -tqq " + path).c_str()), 0);
  }
  std::filesystem::remove(path);
}

TEST(ZipWriter, AProducerErrorFailsTheArchiveAndLeavesNoFile) {
  const std::string path = TempPath("throw");
  {
    ZipWriter zip(path, 1);
    zip.Add("ok.txt", std::make_unique<StringProducer>("fine"));
    zip.Add("bad.json", std::make_unique<ThrowingProducer>());
    try {
      zip.Close();
      FAIL() << "Close() should rethrow the producer's error";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "cursor broke");
    }
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ThreadedProducer, ProducesTheSameBytesAndRecordsOnItsOwnThread) {
  const std::string path = TempPath("threaded");
  {
    ZipWriter zip(path, 1);
    // Small chunks and a short queue: the producer thread waits for libzip many times.
    zip.Add("big.json",
            std::make_unique<ThreadedProducer>(std::make_unique<CountingProducer>(50000), 4096, 2));
    zip.Add("one.json", std::make_unique<ThreadedProducer>(std::make_unique<CountingProducer>(1)));
    zip.Close();
    const std::string expected = CountingProducer::Expected(50000);
    const EntryStats* big = zip.Find("big.json");
    ASSERT_NE(big, nullptr);
    EXPECT_EQ(big->bytes, expected.size());
    EXPECT_EQ(big->records, 50000);
    EXPECT_EQ(big->sha256, Sha256::Of(expected));
    EXPECT_EQ(zip.Find("one.json")->records, 1);
  }
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  ASSERT_NE(z, nullptr) << "libzip error " << err;
  EXPECT_EQ(ReadEntry(z, "big.json"), CountingProducer::Expected(50000));
  EXPECT_EQ(ReadEntry(z, "one.json"), CountingProducer::Expected(1));
  zip_close(z);
  std::filesystem::remove(path);
}

TEST(ThreadedProducer, AnErrorOnTheProducerThreadFailsTheArchive) {
  const std::string path = TempPath("threaded-throw");
  {
    ZipWriter zip(path, 1);
    zip.Add("bad.json",
            std::make_unique<ThreadedProducer>(std::make_unique<ThrowingProducer>(), 16, 1));
    EXPECT_THROW(zip.Close(), std::runtime_error);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ThreadedProducer, StopsItsThreadWhenDestroyedBeforeTheEnd) {
  // An endless producer: destruction must stop and join its thread, not hang.
  class Endless : public EntryProducer {
   public:
    bool Next(std::string* out) override {
      out->append(1000, 'x');
      return true;
    }
  };
  auto p = std::make_unique<ThreadedProducer>(std::make_unique<Endless>(), 4096, 2);
  p->Open();
  std::string out;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(p->Next(&out));
  EXPECT_GE(out.size(), 10u * 4096);
  p.reset();
}

TEST(ZipWriter, CannotCreateInAMissingFolderSaysWhere) {
  try {
    ZipWriter zip("/nonexistent-folder/x/a.zip", 1);
    zip.Add("a", std::make_unique<StringProducer>("a"));
    zip.Close();
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-folder/x/a.zip"), std::string::npos)
        << e.what();
  }
}

TEST(Sha256, MatchesKnownVectors) {
  EXPECT_EQ(Sha256::Of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update("ab");
  h.Update("c");
  EXPECT_EQ(h.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace labelloop::dl_manager
