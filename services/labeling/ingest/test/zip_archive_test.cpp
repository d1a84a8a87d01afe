#include "services/labeling/ingest/zip_archive.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zip.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "services/labeling/ingest/test/zip_maker.hpp"

namespace labelloop::labeling::ingest {
namespace {

TEST(CheckEntryName, RefusesTraversalAndAbsolutePaths) {
  EXPECT_EQ(CheckEntryName("images/cat.png"), "");
  EXPECT_EQ(CheckEntryName("a..b.png"), "");
  EXPECT_EQ(CheckEntryName("../evil.png"), "path with '..' escapes the archive");
  EXPECT_EQ(CheckEntryName("images/../../evil.png"), "path with '..' escapes the archive");
  EXPECT_EQ(CheckEntryName("images\\..\\evil.png"), "path with '..' escapes the archive");
  EXPECT_EQ(CheckEntryName("/etc/passwd"), "absolute path in the archive");
  EXPECT_EQ(CheckEntryName("C:\\x.png"), "absolute path (drive letter) in the archive");
  EXPECT_EQ(CheckEntryName(""), "empty entry name");
}

int MakeZip(const test::ZipEntries& e) { return test::MakeZipFd(e); }

TEST(ZipArchive, ListsAndReadsEntries) {
  ZipArchive zip;
  ASSERT_EQ(zip.Open(MakeZip({{"a.txt", "hello"}, {"dir/b.txt", "world!"}})), "");
  std::vector<ZipEntry> entries;
  ASSERT_EQ(
      zip.List({.max_uncompressed_bytes = 1000, .max_ratio = 100, .max_entries = 10}, &entries),
      "");
  ASSERT_EQ(entries.size(), 2U);
  std::string bytes;
  ASSERT_EQ(zip.Read(entries[1], 100, &bytes), "");
  EXPECT_EQ(bytes, "world!");
  EXPECT_EQ(zip.Read(entries[1], 3, &bytes), "6 bytes, more than the limit of 3");
}

TEST(ZipArchive, RefusesBombsAndOversizedArchivesNamingTheEntry) {
  const std::string zeros(4 << 20, '\0');
  {
    ZipArchive zip;
    ASSERT_EQ(zip.Open(MakeZip({{"ok.txt", "x"}, {"bomb.bin", zeros}})), "");
    std::vector<ZipEntry> entries;
    const auto err =
        zip.List({.max_uncompressed_bytes = int64_t{1} << 30, .max_ratio = 100, .max_entries = 10},
                 &entries);
    EXPECT_NE(err.find("entry 'bomb.bin': compression ratio"), std::string::npos) << err;
    EXPECT_NE(err.find("exceeds the limit of 100"), std::string::npos) << err;
  }
  {
    ZipArchive zip;
    ASSERT_EQ(
        zip.Open(MakeZip({{"one.txt", std::string(600, 'a')}, {"two.txt", std::string(600, 'b')}})),
        "");
    std::vector<ZipEntry> entries;
    const auto err =
        zip.List({.max_uncompressed_bytes = 1000, .max_ratio = 1000, .max_entries = 10}, &entries);
    EXPECT_EQ(err, "entry 'two.txt': the zip's uncompressed size exceeds the limit of 1000 bytes");
  }
  {
    ZipArchive zip;
    ASSERT_EQ(zip.Open(MakeZip({{"1", "a"}, {"2", "b"}, {"3", "c"}})), "");
    std::vector<ZipEntry> entries;
    EXPECT_EQ(
        zip.List({.max_uncompressed_bytes = 100, .max_ratio = 100, .max_entries = 2}, &entries),
        "the zip has 3 entries, more than the limit of 2");
  }
}

TEST(ZipArchive, NotAZip) {
  char path[] = "/tmp/ingest-zip-test-XXXXXX";
  const int fd = mkstemp(path);
  unlink(path);
  ASSERT_EQ(write(fd, "this is not a zip", 17), 17);
  lseek(fd, 0, SEEK_SET);
  ZipArchive zip;
  EXPECT_NE(zip.Open(fd).find("not a readable zip archive"), std::string::npos);
}

}  // namespace
}  // namespace labelloop::labeling::ingest
