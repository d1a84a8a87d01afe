#include "services/labeling/ingest/csv_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace labelloop::labeling::ingest {
namespace {

struct Rec {
  int64_t line;
  std::vector<std::string> fields;
  std::string error;
};

// Parses text fed in chunks of `chunk` bytes.
std::vector<Rec> Parse(const std::string& text, size_t chunk, std::string* error = nullptr,
                       int64_t max_record = 1 << 20) {
  std::vector<Rec> out;
  CsvParser p(max_record, [&](const CsvRecord& r) {
    out.push_back({r.line, {r.fields.begin(), r.fields.end()}, r.error});
    return true;
  });
  bool ok = true;
  for (size_t i = 0; i < text.size() && ok; i += chunk) {
    ok = p.Feed(std::string_view(text).substr(i, chunk));
  }
  if (ok) ok = p.Finish();
  if (error != nullptr) *error = ok ? "" : p.error();
  return out;
}

TEST(CsvParser, QuotedFieldsEmbeddedNewlinesAndUtf8) {
  const std::string text =
      "id,text,n\n"
      "1,\"hello, world\",3\n"
      "2,\"two\nlines\",4\n"
      "3,\"say \"\"hi\"\"\",5\n"
      "4,héllo wörld ✓,6\n";
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{7}, size_t{1000}}) {
    auto recs = Parse(text, chunk);
    ASSERT_EQ(recs.size(), 5U) << "chunk " << chunk;
    EXPECT_EQ(recs[1].fields[1], "hello, world");
    EXPECT_EQ(recs[2].fields[1], "two\nlines");
    EXPECT_EQ(recs[2].line, 3);
    EXPECT_EQ(recs[3].fields[1], "say \"hi\"");
    EXPECT_EQ(recs[3].line, 5);  // the embedded newline counted
    EXPECT_EQ(recs[4].fields[1], "héllo wörld ✓");
    for (const auto& r : recs) EXPECT_EQ(r.error, "");
  }
}

TEST(CsvParser, CrlfBomAndMissingFinalNewline) {
  const std::string text = "\xEF\xBB\xBFid,v\r\na,1\r\nb,2";
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{100}}) {
    auto recs = Parse(text, chunk);
    ASSERT_EQ(recs.size(), 3U);
    EXPECT_EQ(recs[0].fields[0], "id");
    EXPECT_EQ(recs[1].fields[1], "1");
    EXPECT_EQ(recs[2].fields[1], "2");
    EXPECT_EQ(recs[2].line, 3);
  }
}

TEST(CsvParser, BlankLinesAreSkippedEmptyFieldsKept) {
  auto recs = Parse("a,b\n\n,\n1,\n", 4);
  ASSERT_EQ(recs.size(), 3U);
  EXPECT_EQ(recs[1].line, 3);
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"1", ""}));
}

TEST(CsvParser, CharacterAfterClosingQuoteIsARecordError) {
  auto recs = Parse("a,b\n\"x\"y,2\n3,4\n", 5);
  ASSERT_EQ(recs.size(), 3U);
  EXPECT_NE(recs[1].error.find("field 1: unexpected character after a closing quote"),
            std::string::npos)
      << recs[1].error;
  EXPECT_EQ(recs[1].line, 2);
  EXPECT_EQ(recs[2].error, "");  // parsing resumes on the next line
  EXPECT_EQ(recs[2].fields[0], "3");
}

TEST(CsvParser, UnterminatedQuoteAtEndIsReportedWithItsLine) {
  auto recs = Parse("a,b\n1,2\n3,\"never closed\n4,5\n", 3);
  ASSERT_EQ(recs.size(), 3U);
  EXPECT_EQ(recs[2].line, 3);
  EXPECT_NE(recs[2].error.find("unterminated quoted field"), std::string::npos);
  EXPECT_NE(recs[2].error.find("line 3"), std::string::npos);
}

TEST(CsvParser, RecordOverTheLimitStopsWithItsLine) {
  std::string text = "a\n1\n\"" + std::string(5000, 'x');
  std::string error;
  Parse(text, 100, &error, 1024);
  EXPECT_NE(error.find("line 3: record longer than 1024 bytes"), std::string::npos) << error;
}

TEST(CsvParser, CallbackCanStop) {
  int seen = 0;
  CsvParser p(1024, [&](const CsvRecord&) { return ++seen < 2; });
  EXPECT_FALSE(p.Feed("a\nb\nc\nd\n"));
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace labelloop::labeling::ingest
