// A streaming CSV parser (RFC 4180): fed chunks of any size, it calls back once per
// record with the record's fields. Quoted fields may hold separators, doubled quotes
// and newlines; CRLF and LF both end a record; a UTF-8 byte order mark is skipped.
// Memory is bounded by the largest record (max_record_bytes), never the file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace labelloop::labeling::ingest {

struct CsvRecord {
  int64_t line = 0;                      // 1-based line where the record starts
  std::vector<std::string_view> fields;  // valid only during the callback
  std::string error;                     // non-empty: the record did not parse (why)
};

class CsvParser {
 public:
  // The callback returns false to stop parsing (Feed then returns false too).
  using Callback = std::function<bool(const CsvRecord&)>;

  CsvParser(int64_t max_record_bytes, Callback callback);

  // False when the callback asked to stop or a record exceeded max_record_bytes
  // (error() says which line).
  bool Feed(std::string_view chunk);
  // Ends the input: delivers a last record without a trailing newline.
  bool Finish();
  const std::string& error() const { return error_; }

 private:
  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted, kAfterBadQuote };
  bool EndRecord();
  void EndField();

  int64_t max_record_bytes_;
  Callback callback_;
  State state_ = State::kFieldStart;
  std::string buf_;             // the current record's field bytes, concatenated
  std::vector<uint32_t> ends_;  // end offset of each finished field in buf_
  CsvRecord record_;
  int64_t line_ = 1;  // current line
  int64_t record_line_ = 1;
  bool skip_lf_ = false;
  bool record_started_ = false;
  bool at_file_start_ = true;
  int bom_matched_ = 0;
  std::string record_error_;
  std::string error_;
};

}  // namespace labelloop::labeling::ingest
