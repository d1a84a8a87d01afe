// The result of a labeling operation without exceptions: a value or an error with a
// kind the gRPC adapter maps to a status code, and a message for the caller.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace labelloop::labeling {

enum class ErrorKind { kInvalidArgument, kNotFound, kFailedPrecondition, kUnavailable, kInternal };

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
};

inline Error InvalidArgument(std::string m) { return {ErrorKind::kInvalidArgument, std::move(m)}; }
inline Error NotFound(std::string m) { return {ErrorKind::kNotFound, std::move(m)}; }
inline Error FailedPrecondition(std::string m) {
  return {ErrorKind::kFailedPrecondition, std::move(m)};
}

template <typename T>
class Outcome {
 public:
  Outcome(T value) : value_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Outcome(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return value_.has_value(); }
  const T& value() const { return *value_; }
  T& value() { return *value_; }
  const Error& error() const { return error_; }

 private:
  std::optional<T> value_;
  Error error_;
};

}  // namespace labelloop::labeling
