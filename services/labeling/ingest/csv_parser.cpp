#include "services/labeling/ingest/csv_parser.hpp"

namespace labelloop::labeling::ingest {

CsvParser::CsvParser(int64_t max_record_bytes, Callback callback)
    : max_record_bytes_(max_record_bytes), callback_(std::move(callback)) {
  buf_.reserve(4096);
  ends_.reserve(64);
}

void CsvParser::EndField() { ends_.push_back(static_cast<uint32_t>(buf_.size())); }

bool CsvParser::EndRecord() {
  EndField();
  record_.line = record_line_;
  record_.fields.clear();
  uint32_t start = 0;
  for (uint32_t end : ends_) {
    record_.fields.emplace_back(buf_.data() + start, end - start);
    start = end;
  }
  record_.error = std::move(record_error_);
  record_error_.clear();
  // A line holding nothing at all is skipped (a trailing blank line is common).
  const bool blank = ends_.size() == 1 && buf_.empty() && record_.error.empty();
  bool go_on = blank || callback_(record_);
  buf_.clear();
  ends_.clear();
  state_ = State::kFieldStart;
  record_started_ = false;
  return go_on;
}

bool CsvParser::Feed(std::string_view chunk) {
  if (!error_.empty()) return false;
  const char* p = chunk.data();
  const char* end = p + chunk.size();
  // Skip a UTF-8 byte order mark at the very start, even split across chunks.
  static constexpr char kBom[] = "\xEF\xBB\xBF";
  while (at_file_start_ && p < end) {
    if (*p == kBom[bom_matched_]) {
      ++p;
      if (++bom_matched_ == 3) at_file_start_ = false;
    } else {
      if (bom_matched_ > 0) buf_.append(kBom, static_cast<size_t>(bom_matched_));
      at_file_start_ = false;
      if (bom_matched_ > 0) {
        record_started_ = true;
        state_ = State::kUnquoted;
      }
    }
  }
  while (p < end) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (*p == '\n') {
        ++p;
        continue;
      }
    }
    const char c = *p;
    switch (state_) {
      case State::kFieldStart:
        record_started_ = true;
        if (c == '"') {
          state_ = State::kQuoted;
          ++p;
          continue;
        }
        state_ = State::kUnquoted;
        [[fallthrough]];
      case State::kUnquoted:
      case State::kAfterBadQuote: {
        // Fast path: copy the run of plain bytes at once.
        const char* q = p;
        while (q < end && *q != ',' && *q != '\n' && *q != '\r') ++q;
        buf_.append(p, static_cast<size_t>(q - p));
        p = q;
        if (p == end) break;
        if (*p == ',') {
          EndField();
          state_ = State::kFieldStart;
          ++p;
        } else if (*p == '\r') {
          // CR ends the record; an LF right after it (maybe in the next chunk) is skipped.
          ++p;
          ++line_;
          if (!EndRecord()) return false;
          record_line_ = line_;
          skip_lf_ = true;
        } else {  // '\n'
          ++p;
          ++line_;
          if (!EndRecord()) return false;
          record_line_ = line_;
        }
        break;
      }
      case State::kQuoted: {
        const char* q = p;
        while (q < end && *q != '"' && *q != '\n') ++q;
        buf_.append(p, static_cast<size_t>(q - p));
        p = q;
        if (p == end) break;
        if (*p == '\n') {
          buf_.push_back('\n');
          ++line_;
          ++p;
        } else {
          state_ = State::kQuoteInQuoted;
          ++p;
        }
        break;
      }
      case State::kQuoteInQuoted:
        if (c == '"') {  // a doubled quote stands for one
          buf_.push_back('"');
          state_ = State::kQuoted;
          ++p;
        } else if (c == ',' || c == '\n' || c == '\r') {
          state_ = State::kUnquoted;  // the field ended; the separator is handled there
        } else {
          if (record_error_.empty()) {
            record_error_ = "field " + std::to_string(ends_.size() + 1) +
                            ": unexpected character after a closing quote (a quote inside a "
                            "quoted field must be doubled)";
          }
          state_ = State::kAfterBadQuote;
        }
        break;
    }
    if (static_cast<int64_t>(buf_.size()) > max_record_bytes_) {
      error_ = "line " + std::to_string(record_line_) + ": record longer than " +
               std::to_string(max_record_bytes_) + " bytes (an unterminated quote?)";
      return false;
    }
  }
  return true;
}

bool CsvParser::Finish() {
  if (!error_.empty()) return false;
  if (state_ == State::kQuoted) {
    record_error_ = "unterminated quoted field (the file ends inside quotes opened on line " +
                    std::to_string(record_line_) + ")";
    return EndRecord();
  }
  if (record_started_ || !buf_.empty() || !ends_.empty()) return EndRecord();
  return true;
}

}  // namespace labelloop::labeling::ingest
